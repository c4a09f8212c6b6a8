"""The MODE part of the demo report: the bug found, heat maps, DHMs, repair per round.

Used by :func:`deepscope.report.demo.run_demo`::

    from deepscope.report.mode_section import add_mode_section
    summary = add_mode_section(report, model=buggy, train=buggy_train, validation=split.validation,
                               test=split.test, pool=split.pool, seed=cfg.seed,
                               progress=progress)

Plots use a diverging red/blue map: red = positive importance, blue = negative, as in the seed.
Dense layers are drawn as strips (one cell per neuron); convolutional layers as images averaged
over channels.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from deepscope.data import Dataset
from deepscope.debug import PoolContext, diagnose, heatmaps, repair
from deepscope.debug.diagnosis import Bug
from deepscope.report.html import HtmlReport
from deepscope.report.tables import html_table

__all__ = ["add_mode_section", "plot_dhms", "plot_heatmaps", "plot_repair"]

CMAP = "bwr"


def plot_heatmaps(hm: np.ndarray, shape: tuple[int, ...], classes: Sequence[str], *,
                  highlight: int | None = None, ax=None):
    """Label heat maps (K rows): strips for dense layers, channel-mean images for conv layers."""
    import matplotlib.pyplot as plt

    k = len(hm)
    if len(shape) == 3:
        fig, axes = plt.subplots(1, k, figsize=(1.3 * k, 1.8))
        for i, a in enumerate(np.atleast_1d(axes)):
            img = heatmaps.to_image(hm[i], shape)
            m = np.abs(img).max() or 1.0
            a.imshow(img, cmap=CMAP, vmin=-m, vmax=m)
            a.set_title(("▶ " if i == highlight else "") + str(classes[i]), fontsize=8)
            a.axis("off")
        return fig
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 0.3 * k + 0.8))
    ax.imshow(hm, cmap=CMAP, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(k))
    ax.set_yticklabels([("▶ " if i == highlight else "") + str(c) for i, c in enumerate(classes)],
                       fontsize=8)
    ax.set_xlabel("neuron")
    return fig


def plot_dhms(dhms: dict[str, heatmaps.DHM], shape: tuple[int, ...], *, ax=None):
    """One row (strip) or image per differential heat map."""
    import matplotlib.pyplot as plt

    names = list(dhms)
    if len(shape) == 3:
        fig, axes = plt.subplots(1, len(names), figsize=(2.2 * len(names), 2.2))
        for a, name in zip(np.atleast_1d(axes), names, strict=True):
            img = heatmaps.to_image(dhms[name].vector, shape)
            m = np.abs(img).max() or 1.0
            a.imshow(img, cmap=CMAP, vmin=-m, vmax=m)
            a.set_title(name.upper(), fontsize=9)
            a.axis("off")
        return fig
    rows = np.stack([dhms[n].vector for n in names])
    m = np.abs(rows).max() or 1.0
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(
        figsize=(8, 0.4 * len(names) + 0.8))
    ax.imshow(rows, cmap=CMAP, vmin=-m, vmax=m, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([n.upper() for n in names], fontsize=8)
    ax.set_xlabel("neuron")
    return fig


def plot_repair(results: dict[str, Any], *, ax=None):
    """Buggy-label test accuracy per round (samples added) for each strategy."""
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.3))
    for name, res in results.items():
        xs = [r.samples_used for r in res.history]
        ys = [100 * (r.test_label_acc if r.test_label_acc is not None else r.label_acc)
              for r in res.history]
        ax.plot(xs, ys, marker="o", label=name, lw=2.2 if name in ("mode", "auto") else 1.2)
    ax.set_xlabel("pool samples added")
    ax.set_ylabel("buggy label accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def add_mode_section(report: HtmlReport, *, model: nn.Module, train: Dataset,
                     validation: Dataset, test: Dataset, pool: Dataset,
                     label: int | None = None, kind: str | None = None, seed: int = 0,
                     budget: int = 4000, batch: int = 2000,
                     strategies: Sequence[str] = ("mode", "auto", "random"),
                     progress: bool = False) -> dict[str, Any]:
    """Diagnose ``model``, draw its heat maps and DHMs, repair it with ``strategies``.

    The bug repaired is the most severe diagnosed one (or ``label``/``kind`` if given). Each
    strategy runs the whole ``budget`` (``until_fixed=False``) so the curves are comparable.

    Returns
    -------
    dict
        Plain-type summary: diagnosis, chosen bug, feature models, per-strategy repair results.
    """
    diag = diagnose(model, train, test)
    sec = report.section("Debugging with MODE",
                         "Per-label diagnosis, feature-model heat maps, differential heat maps "
                         "and repair by input selection (deepscope.debug).")
    rows = [{"label": f"{i} ({c})", "train acc": f"{a:.1%}", "test acc": f"{b:.1%}",
             "bug": (diag.bug_for(i).kind if diag.bug_for(i) else "")}
            for i, (c, a, b) in enumerate(zip(diag.classes, diag.train_per_label,
                                              diag.test_per_label, strict=True))]
    sec.add_html(html_table(rows))
    if label is None:
        if not diag.bugs:
            sec.add_text("No per-label bug was found; nothing to repair.")
            return {"diagnosis": diag.to_dict(), "bug": None}
        bug = diag.bugs[0]
    else:
        found = diag.bug_for(label)
        bug = found if found is not None and kind in (None, found.kind) else Bug(
            label, kind or "underfit", float(diag.train_per_label[label]),
            float(diag.test_per_label[label]), "chosen by the caller", 0.0)
    sec.add_html(f'<p class="callout">Bug: label <b>{html.escape(diag.classes[bug.label])}</b> '
                 f"— {html.escape(bug.kind)}: {html.escape(bug.evidence)}</p>")

    analysis = _concat(train, validation)
    ctx = PoolContext(model, bug.label, bug.kind, pool, analysis, seed=seed)
    ctx.dhm_scores()
    fm = ctx.features
    acc = ", ".join(f"{name}: {a:.1%}" for name, a in fm.accuracy_.items())
    sec.add_text(f"Feature-model accuracy per hidden layer ({acc}); analysed layer: {fm.layer_}.")
    sec.add_figure(plot_heatmaps(ctx.label_heatmaps, fm.shape_, diag.classes,
                                 highlight=bug.label),
                   f"Label heat maps at {fm.layer_} (red positive, blue negative importance)")
    sec.add_figure(plot_dhms(ctx.dhms, fm.shape_),
                   "Differential heat maps of the bug (" + ", ".join(
                       f"{k.upper()}: {v.subset_sizes or 'label rows'}"
                       for k, v in ctx.dhms.items()) + ")")

    results = {}
    for name in strategies:
        results[name] = repair(model, bug, pool, budget, strategy=name, seed=seed, batch=batch,
                               train=train, validation=validation, test=test,
                               until_fixed=False, progress=progress, context=ctx)
    sec.add_figure(plot_repair(results),
                   f"Accuracy of label {diag.classes[bug.label]} per round (test data)")
    rows = [{"strategy": n, "samples": r.samples_used,
             "label acc before": f"{r.history[0].test_label_acc:.1%}",
             "label acc after": f"{r.history[-1].test_label_acc:.1%}",
             "model acc after": f"{r.history[-1].test_model_acc:.1%}",
             "analysis+selection / fine-tuning": f"{r.cost_ratio:.2f}"}
            for n, r in results.items()]
    sec.add_html(html_table(rows))
    return {"diagnosis": diag.to_dict(), "bug": bug.to_dict(), "analysis": ctx.to_dict(),
            "repair": {n: r.to_dict() for n, r in results.items()}}


def _concat(a: Dataset, b: Dataset) -> Dataset:
    import torch

    return Dataset(x=torch.cat([a.x, b.x]), y=torch.cat([a.y, b.y]), classes=a.classes,
                   name=a.name, split="analysis")
