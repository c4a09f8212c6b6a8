"""The demo report's adversarial-detection section (AmI vs feature squeezing on AT&T faces).

:func:`add_detect_section` is self-contained (the demo has no cache): it trains a face model
briefly, fits AmI and feature squeezing, attacks a handful of held-out faces with cheap
settings and adds tables and figures to a report. The plotting helpers are shared with
``bench/ami_table.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from deepscope.detect.ami.witnesses import WitnessSet
from deepscope.detect.base import DetectionResult
from deepscope.errors import InputError
from deepscope.report.html import HtmlReport
from deepscope.report.tables import html_table

__all__ = ["add_detect_section", "plot_detection_examples", "plot_witness_counts",
           "small_face_model"]

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
    """A small VGG-style face CNN (~26k weights) for the demo.

    2× downsampling, then three conv blocks (16 | 32 | 64 channels, one convolution each),
    global average pooling and a linear head. Built from the zoo's blocks, so
    ``hooks.split`` and AmI's prefix reuse work on it.
    """
    from collections import OrderedDict

    from torch import nn

    from deepscope.models.layers import Normalize, conv_block

    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = nn.Sequential(OrderedDict(
            normalize=Normalize(mean, std, 1), shrink=nn.AvgPool2d(2),
            block1=conv_block((1, 16)), block2=conv_block((16, 32)),
            block3=conv_block((32, 64)), gap=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(), head=nn.Linear(64, num_classes)))
    finally:
        torch.random.set_rng_state(gen_state)
    return model.eval()


def add_detect_section(
    report: HtmlReport, *, seed: int = 0, progress: bool = True,
    log: Callable[[str], Any] = print, epochs: int = 20, n_attack: int = 8,
    target_fpr: float = 0.1, n_pairs: int = 24, model: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """Add "Adversarial detection" to ``report``: AmI vs feature squeezing on AT&T faces.

    Trains :func:`small_face_model` for ``epochs`` epochs on the 320 training faces (unless
    ``model`` is given; the zoo's ``face-vgg-1.2m`` needs ~30 epochs, minutes on a CPU),
    extracts AmI witnesses on them, calibrates AmI and feature squeezing on the first test
    face of every person, and evaluates on the second: false positives on the benign faces,
    detection on FGSM, BIM and C&W L2 ("next") versions of ``n_attack`` of
    them (successful attacks only). About a minute on 2 CPU cores.

    Returns
    -------
    dict
        Accuracy, per-detector FP and detection rates, witness counts, timings.
    """
    from deepscope import attacks
    from deepscope.data import load
    from deepscope.detect import AmIDetector, FeatureSqueezingDetector
    from deepscope.models import augment, evaluate, fit, predict_logits

    if n_attack < 1:
        raise InputError(f"n_attack must be >= 1, got {n_attack}")
    t0 = time.perf_counter()
    train = load("att-faces", "train", progress=progress)
    test = load("att-faces", "test", progress=progress)
    if "boxes" not in train.extras:
        raise InputError("the detection section needs the AT&T landmark boxes "
                         "(att-faces/landmarks_68.npz)")
    if model is None:
        log(f"detection: training a small face CNN on AT&T faces for {epochs} epochs")
        model = small_face_model(train.num_classes, mean=float(train.x.mean()),
                                 std=float(train.x.std()), seed=seed)
        fit(model, train, epochs=epochs, lr=5e-3, batch_size=32, patience=None,
            augment=augment.faces(), seed=seed, progress=progress)
    t_train = time.perf_counter() - t0
    acc = evaluate(model, test).accuracy
    correct = predict_logits(model, test.x).argmax(1) == test.y
    first = torch.zeros(len(test), dtype=torch.bool)
    first[::2] = True  # test faces come as (person, image) pairs: fold A = each first image
    x_cal = test.x[first & correct]
    eval_idx = torch.nonzero(~first & correct).flatten()

    log("detection: fitting AmI (witnesses + steering calibration) and feature squeezing")
    t1 = time.perf_counter()
    ami = AmIDetector(model, target_fpr=target_fpr, n_pairs=n_pairs, layers=None,
                      alphas=(0.5, 1.0, 2.0, 5.0, 10.0), epsilons=(1.0,), seed=seed,
                      attribute_names=tuple(train.info["box_names"]), progress=progress)
    ami.fit(train.x, train.extras["boxes"], groups=train.extras["subject"], x_calib=x_cal)
    fs = FeatureSqueezingDetector(model, target_fpr=target_fpr).fit(train.x, x_calib=x_cal)
    t_fit = time.perf_counter() - t1

    log(f"detection: attacking {n_attack} held-out faces (FGSM, BIM, C&W L2)")
    t2 = time.perf_counter()
    order = eval_idx[torch.randperm(len(eval_idx),
                                    generator=torch.Generator().manual_seed(seed))]
    pick = order[:n_attack]
    x, y = test.x[pick], test.y[pick]
    runs = {
        "FGSM": attacks.get("fgsm", model, eps=0.03, progress=False)(x, y),
        "BIM": attacks.get("bim", model, eps=0.03, steps=10, step_size=0.0075,
                           progress=False)(x, y),
        "C&W L2 (next)": attacks.get("cw-l2", model, steps=20, binary_search_steps=2,
                                     initial_const=0.1, progress=False)(x, y, target="next"),
    }
    t_attack = time.perf_counter() - t2

    benign = test.x[eval_idx]
    rows, summary_rates = [], {}
    for name, det in (("AmI", ami), ("Feature squeezing", fs)):
        row: dict[str, Any] = {"detector": name}
        fp = det.detect(benign)
        row["FP (benign)"] = f"{float(fp.float().mean()):.0%} ({int(fp.sum())}/{len(fp)})"
        rates = {"fp": float(fp.float().mean())}
        for key, res in runs.items():
            ok = res.success
            if bool(ok.any()):
                flags = det.detect(res.x_adv[ok])
                row[key] = f"{float(flags.float().mean()):.0%} ({int(flags.sum())}/{len(flags)})"
                rates[key] = float(flags.float().mean())
            else:
                row[key] = "no successful attack"
        rows.append(row)
        summary_rates[name] = rates

    sec = report.section(
        "Adversarial detection (AmI)",
        "Attribute-steered detection: AmI finds neurons that witness the eyes, nose and mouth "
        "(they change when the attribute is swapped with another person's and stay when only "
        "the rest of the face is swapped), then builds a steered model that strengthens them "
        "and weakens the rest. An input whose label the steered model does not keep is "
        "flagged. Feature squeezing (5-bit depth and 2×2 median filter) is the baseline.",
    )
    sec.add_html(html_table([
        {"item": "face model", "value": f"held-out accuracy {acc:.1%} on {len(test)} faces "
                                        f"(training {t_train:.0f} s)"},
        {"item": "calibration", "value": f"{len(x_cal)} benign test faces, target FP "
                                         f"{target_fpr:.0%}"},
        {"item": "AmI steering", "value": f"layers {', '.join(ami.config_.layers)}; "
                                          f"α = {ami.config_.alpha:g}, ε = "
                                          f"{ami.config_.epsilon:g}"},
        {"item": "attacks", "value": f"{n_attack} held-out faces; success " + ", ".join(
            f"{k} {float(r.success.float().mean()):.0%}" for k, r in runs.items())},
    ]))
    sec.add_html(html_table(rows))
    counts = ami.witnesses_.counts()
    sec.add_html(html_table([{"attribute": k, **v} for k, v in counts.items()]))
    sec.add_figure(plot_witness_counts(ami.witnesses_), "Witness neurons per layer and "
                   "attribute.")
    ex_x = torch.cat([x[:2], runs["FGSM"].x_adv[:2], runs["C&W L2 (next)"].x_adv[:2]])
    titles = ["benign", "benign", "FGSM", "FGSM", "C&W L2", "C&W L2"]
    ex_boxes = test.extras["boxes"][torch.cat([pick[:2]] * 3)]
    sec.add_figure(plot_detection_examples(ex_x, ami.run(ex_x), fs.run(ex_x), titles=titles,
                                           boxes=ex_boxes,
                                           box_names=tuple(train.info["box_names"])),
                   "Held-out faces with their attribute boxes, benign and attacked, and the "
                   "verdicts of both detectors.")
    return {
        "accuracy": acc, "rates": summary_rates, "witness_counts": counts,
        "config": ami.config_.to_dict(), "threshold": ami.threshold_,
        "attack_success": {k: float(r.success.float().mean()) for k, r in runs.items()},
        "seconds": {"train": t_train, "fit": t_fit, "attacks": t_attack,
                    "total": time.perf_counter() - t0},
    }
