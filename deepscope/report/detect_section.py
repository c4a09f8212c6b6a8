"""The demo report's adversarial-detection section (AmI vs feature squeezing on AT&T faces).

Rendering only: :func:`render_detect_section` turns a
:class:`~deepscope.audit.detection.DetectionExperiment` (computed by
:func:`deepscope.audit.detection.detection_experiment`) into tables and figures. The plotting
helpers are shared with ``bench/ami_table.py``.

Example
-------
>>> exp = detection_experiment(seed=0, epochs=20)                      # doctest: +SKIP
>>> render_detect_section(report, exp)                                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from deepscope._stats import wilson_interval
from deepscope.detect import DetectionReport, DetectionResult, WitnessSet
from deepscope.report.html import HtmlReport
from deepscope.report.tables import html_table

if TYPE_CHECKING:
    from deepscope.audit.detection import DetectionExperiment

__all__ = ["add_detect_section", "plot_detection_examples", "plot_witness_counts",
           "render_detect_section", "small_face_model"]

_BOX_COLORS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b")


def plot_detection_examples(x: torch.Tensor, ami: DetectionResult,
                            other: DetectionResult | None = None, *,
                            titles: Sequence[str] | None = None,
                            boxes: torch.Tensor | None = None,
                            box_names: Sequence[str] = (), ax=None):
    """One row of images with each detector's verdict (and attribute boxes when given).

    Parameters
    ----------
    x : torch.Tensor
        N×C×H×W images in [0, 1].
    ami, other : DetectionResult
        Results of AmI and (optionally) a second detector on ``x``.
    titles : sequence of str, optional
        One title per image.
    boxes : torch.Tensor, optional
        N×A×4 attribute boxes to outline.
    box_names : sequence of str
        Names of the A boxes (legend).
    ax : sequence of matplotlib Axes, optional
        N axes to draw on; a new figure otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.patches as mpatches
    from matplotlib.figure import Figure

    n = x.shape[0]
    if ax is None:
        fig = Figure(figsize=(2.1 * n, 3.0))
        axes = fig.subplots(1, n, squeeze=False)[0]
    else:
        axes = list(ax)
        fig = axes[0].figure
    for i in range(n):
        a = axes[i]
        img = x[i].detach().cpu()
        a.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0),
                 cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=1)
        if boxes is not None:
            for j, (x0, y0, x1, y1) in enumerate(boxes[i].tolist()):
                a.add_patch(mpatches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0,
                                               fill=False, lw=1.2,
                                               color=_BOX_COLORS[j % len(_BOX_COLORS)]))
        verdict = f"AmI: {'flag' if bool(ami.flags[i]) else 'pass'}"
        if other is not None:
            verdict += f" | {other.detector}: {'flag' if bool(other.flags[i]) else 'pass'}"
        head = f"{titles[i]}\n" if titles else ""
        a.set_title(head + verdict, fontsize=7)
        a.set_xticks([])
        a.set_yticks([])
    if boxes is not None and box_names:
        handles = [mpatches.Patch(color=_BOX_COLORS[j % len(_BOX_COLORS)], label=name)
                   for j, name in enumerate(box_names)]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7,
                   frameon=False)
    return fig


def plot_witness_counts(witnesses: WitnessSet, ax=None):
    """Grouped bars: witnesses per layer and attribute."""
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(1.3 * len(witnesses.layers) + 2, 3.0))
        ax = fig.subplots()
    else:
        fig = ax.figure
    counts = witnesses.counts()
    rows = list(witnesses.attributes)
    width = 0.8 / max(len(rows), 1)
    for j, name in enumerate(rows):
        xs = [i + j * width for i in range(len(witnesses.layers))]
        ax.bar(xs, [counts[name][layer] for layer in witnesses.layers], width, label=name,
               color=_BOX_COLORS[j % len(_BOX_COLORS)])
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(witnesses.layers))])
    ax.set_xticklabels(witnesses.layers, fontsize=7, rotation=20)
    ax.set_ylabel("witness neurons")
    ax.legend(fontsize=7, frameon=False)
    return fig


def small_face_model(num_classes: int = 40, *, mean: float = 0.44, std: float = 0.2,
                     seed: int = 0) -> torch.nn.Module:
    """The zoo's ``face-cnn-26k`` (kept for old callers; use ``zoo.build("face-cnn-26k")``).

    2× downsampling, then three conv blocks (16 | 32 | 64 channels, one convolution each),
    global average pooling and a linear head; the global RNG is left untouched.
    """
    from deepscope.models import zoo

    return zoo.build("face-cnn-26k", num_classes=num_classes, mean=mean, std=std, seed=seed)


def _cell(counts: tuple[int, int] | None, rate: float | None) -> str:
    """``"25% (2/8; 95% CI 7–59%)"``: the rate with its n and a Wilson interval."""
    if counts is None or rate is None or counts[1] == 0:
        return "no successful attack"
    lo, hi = wilson_interval(*counts)
    return f"{rate:.0%} ({counts[0]}/{counts[1]}; 95% CI {lo:.0%}–{hi:.0%})"


def detection_rows(report: DetectionReport) -> list[dict[str, Any]]:
    """One table row per detector: FP on benign inputs and detection per attack."""
    rows = []
    for det in report.detectors:
        row: dict[str, Any] = {"detector": det,
                               "FP (benign)": _cell(report.counts[det]["fp"],
                                                    report.fp_rate(det))}
        for att in report.attacks:
            row[att] = _cell(report.counts[det][att], report.rate(det, att))
        rows.append(row)
    return rows


def _who_detects_more(rep: DetectionReport) -> str:
    """One sentence: which detector flagged more successful attacks, pooled over the attacks."""
    pooled = {}
    for det in rep.detectors:
        cells = [rep.counts[det][a] for a in rep.attacks if rep.counts[det][a] is not None]
        k, n = sum(c[0] for c in cells), sum(c[1] for c in cells)
        if n:
            pooled[det] = (k, n)
    if len(pooled) < 2:
        return ""
    ranked = sorted(pooled.items(), key=lambda kv: kv[1][0] / kv[1][1], reverse=True)
    (best, (kb, nb)), (other, (ko, no)) = ranked[0], ranked[1]
    if kb * no == ko * nb:
        return f"{best} and {other} flag the same share of successful attacks ({kb}/{nb}). "
    return (f"In this run {best} flags more successful attacks than {other} ({kb}/{nb} vs "
            f"{ko}/{no}, all attacks pooled). ")


def _small_sample_note(rep: DetectionReport) -> str:
    """Say how far the rates can be trusted, from the widest interval in the table."""
    widths = []
    for det in rep.detectors:
        for key in ("fp", *rep.attacks):
            counts = rep.counts[det][key]
            if counts is not None and counts[1] > 0:
                lo, hi = wilson_interval(*counts)
                widths.append((hi - lo, counts[1]))
    if not widths:
        return "No benign input and no successful attack to count."
    width, n = max(widths)
    return (_who_detects_more(rep) + f"Each cell counts correctly classified benign faces (FP) or successful attacks "
            f"only; with n as small as {n}, a 95% interval is up to {width:.0%} wide, so the "
            f"rates here show the method at work rather than rank the detectors. "
            f"bench/results/ami.md measures them on hundreds of attacked faces.")


def render_detect_section(report: HtmlReport, exp: DetectionExperiment) -> None:
    """Add "Adversarial detection (AmI)" to ``report`` from a computed experiment."""
    sec = report.section(
        "Adversarial detection (AmI)",
        "Attribute-steered detection: AmI finds neurons that witness the eyes, nose and mouth "
        "(they change when the attribute is swapped with another person's and stay when only "
        "the rest of the face is swapped), then builds a steered model that strengthens them "
        "and weakens the rest. An input whose label the steered model does not keep is "
        "flagged. Feature squeezing (5-bit depth and 2×2 median filter) is the baseline.",
    )
    cfg, rep = exp.config, exp.report
    sec.add_html(html_table([
        {"item": "face model", "value": f"held-out accuracy {exp.accuracy:.1%} on "
                                        f"{exp.n_test} faces (training "
                                        f"{exp.seconds['train']:.0f} s)"},
        {"item": "calibration", "value": f"{exp.n_calib} benign test faces, target FP "
                                         f"{exp.target_fpr:.0%}"},
        {"item": "AmI steering", "value": f"layers {', '.join(cfg['layers'])}; "
                                          f"α = {cfg['alpha']:g}, ε = {cfg['epsilon']:g}"},
        {"item": "attacks", "value": f"{exp.n_attack} held-out faces; success " + ", ".join(
            f"{a} {rep.success_rate(a):.0%}" for a in rep.attacks)},
    ]))
    sec.add_html(html_table(detection_rows(rep)))
    sec.add_text(_small_sample_note(rep))
    counts = exp.witnesses.counts()
    sec.add_html(html_table([{"attribute": k, **v} for k, v in counts.items()]))
    sec.add_figure(plot_witness_counts(exp.witnesses), "Witness neurons per layer and "
                   "attribute.")
    sec.add_figure(plot_detection_examples(exp.examples, exp.ami_examples, exp.fs_examples,
                                           titles=list(exp.example_titles),
                                           boxes=exp.example_boxes, box_names=exp.box_names),
                   "Held-out faces with their attribute boxes, benign and attacked, and the "
                   "verdicts of both detectors.")


def add_detect_section(report: HtmlReport, experiment: DetectionExperiment) -> dict[str, Any]:
    """Render a detection experiment into ``report`` and return its summary dict.

    ``experiment`` is what :func:`deepscope.audit.detection.detection_experiment` returned: the
    report layer only renders it (computing lives in :mod:`deepscope.audit.detection`).

    Returns
    -------
    dict
        Accuracy, per-detector FP and detection rates, witness counts, timings.
    """
    render_detect_section(report, experiment)
    return experiment.to_dict()
