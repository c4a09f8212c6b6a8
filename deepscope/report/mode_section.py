"""The MODE part of the demo report: the bug found, heat maps, DHMs, repair per round.

It renders a :class:`deepscope.debug.StrategyComparison` (computed by
:func:`deepscope.debug.compare_strategies`) and computes nothing itself::

    from deepscope import debug
    from deepscope.report.mode_section import add_mode_section
    comparison = debug.compare_strategies(buggy, split, train=buggy_train, seed=0)
    summary = add_mode_section(report, comparison)

The older call ``add_mode_section(report, model=..., train=..., validation=..., test=...,
pool=..., seed=...)`` still works: it runs :func:`~deepscope.debug.compare_strategies` first.

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

from deepscope.data import Dataset, ModeSplit
from deepscope.debug import StrategyComparison, compare_strategies, heatmaps
from deepscope.errors import InputError
from deepscope.report.html import HtmlReport
from deepscope.report.tables import html_table

__all__ = ["add_mode_section", "describe_subsets", "plot_dhms", "plot_heatmaps", "plot_repair", "render_mode_section"]

CMAP = "bwr"


def _colorbar(fig, mappable, axes) -> None:
    fig.colorbar(mappable, ax=axes, fraction=0.046, pad=0.02,
                 label="importance (red +, blue −)")


def plot_heatmaps(hm: np.ndarray, shape: tuple[int, ...], classes: Sequence[str], *,
                  highlight: int | None = None, ax=None):
    """Label heat maps (K rows): strips for dense layers, channel-mean images for conv layers.

    Every map is on one scale (the label heat maps share the global max |w|; channel-mean
    images share their largest |value|), shown by the colour bar.
    """
    import matplotlib.pyplot as plt

    k = len(hm)
    if len(shape) == 3:
        fig, axes = plt.subplots(1, k, figsize=(1.3 * k + 1.0, 1.9))
        axes = np.atleast_1d(axes)
        images = [heatmaps.to_image(hm[i], shape) for i in range(k)]
        m = max(float(np.abs(img).max()) for img in images) or 1.0  # one scale for all labels
        for i, (a, img) in enumerate(zip(axes, images, strict=True)):
            im = a.imshow(img, cmap=CMAP, vmin=-m, vmax=m)
            a.set_title(("▶ " if i == highlight else "") + str(classes[i]), fontsize=8)
            a.axis("off")
        _colorbar(fig, im, list(axes))
        return fig
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 0.3 * k + 0.9))
    im = ax.imshow(hm, cmap=CMAP, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(k))
    ax.set_yticklabels([("▶ " if i == highlight else "") + str(c) for i, c in enumerate(classes)],
                       fontsize=8)
    ax.set_xlabel("neuron")
    ax.set_ylabel("label")
    _colorbar(fig, im, ax)
    return fig


def plot_dhms(dhms: dict[str, heatmaps.DHM], shape: tuple[int, ...], *, ax=None):
    """One row (strip) or image per differential heat map, on one symmetric colour scale."""
    import matplotlib.pyplot as plt

    names = list(dhms)
    m = max((float(np.abs(d.vector).max()) for d in dhms.values()), default=1.0) or 1.0
    if len(shape) == 3:
        fig, axes = plt.subplots(1, len(names), figsize=(2.2 * len(names) + 1.0, 2.3))
        axes = np.atleast_1d(axes)
        for a, name in zip(axes, names, strict=True):
            img = heatmaps.to_image(dhms[name].vector, shape)
            im = a.imshow(img, cmap=CMAP, vmin=-m, vmax=m)
            a.set_title(name.upper(), fontsize=9)
            a.axis("off")
        _colorbar(fig, im, list(axes))
        return fig
    rows = np.stack([dhms[n].vector for n in names])
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(
        figsize=(8, 0.4 * len(names) + 0.9))
    im = ax.imshow(rows, cmap=CMAP, vmin=-m, vmax=m, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([n.upper() for n in names], fontsize=8)
    ax.set_xlabel("neuron")
    _colorbar(fig, im, ax)
    return fig


def describe_subsets(sizes: dict[str, int] | None) -> str:
    """``{"misclassified_as_L": 12, ...}`` → ``"12 misclassified as L, ..."`` (no raw dicts)."""
    if not sizes:
        return "from the label heat maps"
    return ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in sizes.items())


def plot_repair(results: dict[str, Any], *, ax=None):
    """Buggy-label test accuracy per round (samples added) for each strategy."""
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.3))
    colors = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#000000")
    for i, (name, res) in enumerate(results.items()):
        xs = [r.samples_used for r in res.history]
        ys = [100 * (r.test_label_acc if r.test_label_acc is not None else r.label_acc)
              for r in res.history]
        ax.plot(xs, ys, marker="o", label=name, color=colors[i % len(colors)],
                lw=2.2 if name in ("mode", "auto") else 1.2)
    ax.set_xlabel("pool samples added")
    ax.set_ylabel("buggy label accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _diagnosis_rows(comparison: StrategyComparison) -> list[dict[str, str]]:
    diag = comparison.diagnosis
    return [{"label": f"{i} ({c})", "train acc": f"{a:.1%}", "test acc": f"{b:.1%}",
             "bug": (diag.bug_for(i).kind if diag.bug_for(i) else "")}
            for i, (c, a, b) in enumerate(zip(diag.classes, diag.train_per_label,
                                              diag.test_per_label, strict=True))]


def _repair_rows(comparison: StrategyComparison) -> list[dict[str, Any]]:
    return [{"strategy": n, "samples": r.samples_used,
             "label acc before": f"{r.history[0].test_label_acc:.1%}",
             "label acc after": f"{r.history[-1].test_label_acc:.1%}",
             "model acc after": f"{r.history[-1].test_model_acc:.1%}",
             "analysis+selection / fine-tuning": f"{r.cost_ratio:.2f}"}
            for n, r in comparison.results.items()]


def render_mode_section(report: HtmlReport, comparison: StrategyComparison) -> dict[str, Any]:
    """Add the MODE section for ``comparison`` to ``report``; return its plain-type summary."""
    if not isinstance(comparison, StrategyComparison):
        raise InputError("the MODE section renders a debug.StrategyComparison; compute it with "
                         "debug.compare_strategies(model, split, ...)")
    diag, bug = comparison.diagnosis, comparison.bug
    sec = report.section("Debugging with MODE",
                         "Per-label diagnosis, feature-model heat maps, differential heat maps "
                         "and repair by input selection (deepscope.debug).")
    sec.add_html(html_table(_diagnosis_rows(comparison)))
    if bug is None:
        sec.add_text("No per-label bug was found; nothing to repair.")
        return comparison.to_dict()
    sec.add_html(f'<p class="callout">Bug: label <b>{html.escape(diag.classes[bug.label])}</b> '
                 f"— {html.escape(bug.kind)}: {html.escape(bug.evidence)}</p>")
    acc = ", ".join(f"{name}: {a:.1%}" for name, a in comparison.layer_accuracy.items())
    layer, shape = comparison.layer, comparison.shape
    sec.add_text(f"Feature-model accuracy per hidden layer ({acc}); analysed layer: {layer}.")
    sec.add_figure(plot_heatmaps(comparison.label_heatmaps, shape, diag.classes,
                                 highlight=bug.label),
                   f"Label heat maps at {layer} (red positive, blue negative importance)")
    sec.add_figure(plot_dhms(comparison.dhms, shape),
                   "Differential heat maps of the bug (" + "; ".join(
                       f"{k.upper()}: {describe_subsets(v.subset_sizes)}"
                       for k, v in comparison.dhms.items()) + ")")
    sec.add_figure(plot_repair(comparison.results),
                   f"Accuracy of label {diag.classes[bug.label]} per round (test data)")
    sec.add_html(html_table(_repair_rows(comparison)))
    return comparison.to_dict()


def add_mode_section(report: HtmlReport, comparison: StrategyComparison | None = None, *,
                     model: nn.Module | None = None, train: Dataset | None = None,
                     validation: Dataset | None = None, test: Dataset | None = None,
                     pool: Dataset | None = None, label: int | None = None,
                     kind: str | None = None, seed: int = 0, budget: int = 4000,
                     batch: int = 2000,
                     strategies: Sequence[str] = ("mode", "auto", "random"),
                     progress: bool = False) -> dict[str, Any]:
    """Render ``comparison`` (see :func:`render_mode_section`).

    Without ``comparison`` (the older call style) the keywords are handed to
    :func:`deepscope.debug.compare_strategies` first: the most severe diagnosed bug (or
    ``label``/``kind``) is repaired with each of ``strategies`` over the whole ``budget``.

    Returns
    -------
    dict
        Plain-type summary: diagnosis, chosen bug, feature models, per-strategy repair results.
    """
    if comparison is None:
        if model is None or train is None or validation is None or test is None or pool is None:
            raise InputError("add_mode_section needs a StrategyComparison (or model, train, "
                             "validation, test and pool)")
        split = ModeSplit(train=train, validation=validation, test=test, pool=pool)
        comparison = compare_strategies(model, split, label=label, kind=kind,
                                        strategies=strategies, budget=budget, batch=batch,
                                        seed=seed, progress=progress)
    return render_mode_section(report, comparison)
