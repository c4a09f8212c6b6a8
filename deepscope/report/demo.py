"""Rendering of the demo report (``deepscope demo`` / ``make demo``).

:func:`render_demo` draws a :class:`~deepscope.audit.demo.DemoExperiment` (computed by
:func:`deepscope.audit.demo.demo_experiment`: a healthy and a buggy MNIST model, MODE's diagnosis
and repair, DMM-MEN / LIME / KernelSHAP explanations, AmI vs feature squeezing) as a
self-contained ``index.html`` with a ``summary.json`` beside it. Nothing here trains or computes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from deepscope._atomic import atomic_write
from deepscope.errors import InputError
from deepscope.report import plots
from deepscope.report.html import HtmlReport, Section
from deepscope.report.tables import html_table

if TYPE_CHECKING:
    from deepscope.audit.demo import DemoExperiment

__all__ = ["render_demo"]


def render_demo(exp: DemoExperiment, out_dir: str | Path = "report", *,
                overwrite: bool = False) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/summary.json`` for a demo experiment.

    Parameters
    ----------
    exp : DemoExperiment
        What :func:`deepscope.audit.demo.demo_experiment` measured.
    out_dir : path
        Folder for the report; created if needed.
    overwrite : bool
        Replace a report already in ``out_dir``; otherwise an existing one is an
        :class:`~deepscope.errors.InputError`.

    Returns
    -------
    pathlib.Path
        The written ``index.html``.
    """
    out = Path(out_dir)
    existing = [p for p in (out / "index.html", out / "summary.json") if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} already exists; pass --overwrite or choose another "
                         f"--out folder")
    cfg = exp.config
    report = HtmlReport(
        "deepscope demo",
        subtitle=(f"{cfg.arch} on {cfg.dataset}: what an under-fitting bug on label "
                  f"{exp.label_name!r} looks like from the outside"),
    )
    _setup_section(report, exp)
    _accuracy_sections(report, exp)
    _misclassified_section(report, exp)
    if exp.mode is not None:
        from deepscope.report.mode_section import add_mode_section

        add_mode_section(report, exp.mode)
    if exp.explanations is not None or exp.sequence_explanations or exp.sequence_notes:
        _explanation_section(report, exp)
    if exp.detection is not None:
        from deepscope.report.detect_section import render_detect_section

        render_detect_section(report, exp.detection)
    curves = report.section("Training", "Loss and validation accuracy per epoch.")
    curves.add_figure(plots.training_curve(exp.history["buggy"]), "Buggy model.")
    curves.add_figure(plots.training_curve(exp.history["healthy"]), "Healthy model.")
    path = report.write(out / "index.html")
    with atomic_write(out / "summary.json", binary=False) as fh:
        fh.write(json.dumps({"report": str(path), **exp.to_dict()}, indent=2))
    return path


def _setup_section(report: HtmlReport, exp: DemoExperiment) -> None:
    cfg, sizes, secs = exp.config, exp.split_sizes, exp.seconds
    setup = report.section("Setup", "The data, the model and the injected bug.")
    setup.add_html(html_table([
        {"item": "dataset", "value": f"{cfg.dataset} (train+test, {exp.n_images} images)"},
        {"item": f"split (MODE protocol, seed {cfg.seed})",
         "value": f"train {sizes['train']} / validation {sizes['validation']} / test "
                  f"{sizes['test']} / bug-fixing pool {sizes['pool']}"},
        {"item": "architecture", "value": f"{cfg.arch} ({exp.weights:,} weights)"},
        {"item": "injected bug", "value": exp.bug["description"]},
        {"item": "training", "value": f"up to {cfg.epochs} epochs, early stopping on validation; "
                                      f"healthy {secs['train_healthy']:.0f} s, buggy "
                                      f"{secs['train_buggy']:.0f} s"},
    ], floatfmt=".3g"))


def _accuracy_sections(report: HtmlReport, exp: DemoExperiment) -> None:
    ev_h, ev_b, tr_b, label = exp.healthy, exp.buggy, exp.buggy_train, exp.config.bug_label
    acc = report.section(
        "Per-label accuracy",
        "Test accuracy of each label for the healthy and the buggy model. The starved label "
        "(red) has a low accuracy on both its training and test data: an under-fitting bug.",
    )
    counts = exp.buggy_train_counts
    rows = []
    for i, name in enumerate(exp.classes):
        rows.append({
            "label": name,
            "train samples (buggy)": int(counts[i]),
            "healthy test acc": f"{ev_h.per_label[i]:.1%}",
            "buggy train acc": f"{tr_b.per_label[i]:.1%}",
            "buggy test acc": f"{ev_b.per_label[i]:.1%}",
        })
    rows.append({"label": "all", "train samples (buggy)": int(counts.sum()),
                 "healthy test acc": f"{ev_h.accuracy:.1%}",
                 "buggy train acc": f"{tr_b.accuracy:.1%}",
                 "buggy test acc": f"{ev_b.accuracy:.1%}"})
    acc.add_html(html_table(rows, highlight={label: "bug"}))
    acc.add_figure(
        plots.per_label_accuracy(ev_b.per_label, ev_b.classes, compare=ev_h.per_label,
                                 labels=("buggy model", "healthy model"), highlight=[label]),
        "Per-label test accuracy: buggy model (blue, bug in red) beside the healthy model (grey).",
    )
    conf = report.section("Confusion matrices",
                          "Where each true label's test images go (rows sum to 100%).")
    conf.add_figure(plots.confusion_matrix(ev_b.confusion, ev_b.classes),
                    f"Buggy model: label {exp.label_name} leaks into its look-alikes.")
    conf.add_figure(plots.confusion_matrix(ev_h.confusion, ev_h.classes), "Healthy model.")


def _misclassified_section(report: HtmlReport, exp: DemoExperiment) -> None:
    mis = report.section("Misclassified test images of the buggy label",
                         "What the buggy model gets wrong, with its predicted label.")
    if len(exp.misclassified):
        mis.add_figure(
            plots.image_grid(exp.misclassified,
                             titles=[f"→ {exp.classes[int(p)]}" for p in exp.misclassified_as]),
            f"{exp.n_wrong} of {exp.n_label} test images of label {exp.label_name} are "
            f"misclassified; the first {len(exp.misclassified)} are shown.",
        )
    else:
        mis.add_text("The buggy model classifies every test image of this label correctly.")


def _explanation_section(report: HtmlReport, exp: DemoExperiment) -> None:
    """DMM-MEN, LIME and KernelSHAP overlays side by side for inputs of the buggy label, then a
    byte and a sentence explanation."""
    from deepscope.report import explanations as rx

    runs, k = exp.explanations, exp.config.explain_k
    if runs is None:
        sec = report.section("Explanations of sequences",
                             "A byte decision and a sentence, explained.")
        _sequence_explanations(sec, exp)
        return
    n = len(runs.x)
    sec = report.section(
        f"Why the buggy model says {exp.label_name}",
        f"Black-box explanations of {n} test images the buggy model correctly assigns to "
        f"label {exp.label_name}: the top-{k} 2×2-pixel cells (red) that push its "
        f"probability up. DMM-MEN fits one Bayesian mixture of elastic-net regressions on all "
        f"{n} images; LIME and KernelSHAP fit a local model per image. Beside them, the same "
        "kind of explanation for sequences: a function start in raw bytes and a sentence.",
    )
    sec.add_html(html_table(rx.top_feature_table(runs, k)))
    sec.add_figure(rx.overlay_grid(runs, k, n_show=4),
                   "Rows: inputs. Columns: the input, then each explainer's top cells.")
    _sequence_explanations(sec, exp)


def _sequence_explanations(sec: Section, exp: DemoExperiment) -> None:
    """A byte and a sentence explanation beside the image ones (or why they are missing)."""
    from deepscope.report import explanations as rx

    for se, caption in zip(exp.sequence_explanations, exp.sequence_captions, strict=True):
        what = "Bytes" if se.kind == "bytes" else "Words"
        sec.add_figure(rx.sequence_figure(se), f"{what}: {caption} Red supports the explained "
                       "class, blue opposes it.")
    for note in exp.sequence_notes:
        sec.add_html(f'<p class="callout">{html.escape(note)}</p>')
