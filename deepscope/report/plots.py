"""Matplotlib plots for deepscope results.

Every function takes ``ax=None`` (a new figure is created when omitted), returns the figure and
never calls ``show()``. Only this module imports matplotlib's pyplot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

#: Okabe–Ito colours (safe for the common colour-vision deficiencies).
BLUE, VERMILLION, ORANGE, GREEN, SKY, PURPLE, YELLOW = (
    "#0072B2", "#D55E00", "#E69F00", "#009E73", "#56B4E9", "#CC79A7", "#F0E442")
GREY = "#AAAAAA"
#: Line colours in order, for plots with several series.
CYCLE = (BLUE, VERMILLION, GREEN, ORANGE, SKY, PURPLE, "#000000")


def _axes(ax, figsize: tuple[float, float]):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def per_label_accuracy(
    per_label: Sequence[float],
    classes: Sequence[str],
    *,
    compare: Sequence[float] | None = None,
    labels: tuple[str, str] = ("model", "reference"),
    highlight: Sequence[int] = (),
    title: str | None = None,
    ax=None,
):
    """Bar chart of per-label accuracy, optionally beside a reference model's.

    Parameters
    ----------
    per_label : sequence of float
        Accuracy of each label in [0, 1].
    classes : sequence of str
        Label names, same length.
    compare : sequence of float, optional
        A second series (e.g. a healthy model) drawn beside the first.
    labels : (str, str)
        Legend names of the two series.
    highlight : sequence of int
        Labels to mark in vermillion (e.g. labels with a bug).
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, (7.0, 3.4))
    acc = np.asarray(per_label, dtype=float) * 100
    k = len(acc)
    pos = np.arange(k)
    width = 0.4 if compare is not None else 0.7
    shift = width / 2 if compare is not None else 0.0
    colors = [VERMILLION if i in set(highlight) else BLUE for i in range(k)]
    ax.bar(pos - shift, acc, width, color=colors, label=labels[0])
    if compare is not None:
        ax.bar(pos + shift, np.asarray(compare, float) * 100, width, color=GREY,
               label=labels[1])
        # above the axes, so that it never covers a bar
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8,
                  frameon=False)
    for i, a in enumerate(acc):
        ax.text(pos[i] - shift, a + 1, f"{a:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(pos, [str(c) for c in classes], rotation=30 if max(map(len, classes)) > 3 else 0,
                  fontsize=8)
    ax.set_xlabel("label")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 110)  # from zero: a truncated axis exaggerates differences
    ax.set_yticks(range(0, 101, 20))
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10, pad=18 if compare is not None else 6)
    fig.tight_layout()
    return fig


def confusion_matrix(
    confusion: np.ndarray,
    classes: Sequence[str],
    *,
    normalize: bool = True,
    title: str | None = None,
    ax=None,
):
    """Heat map of a confusion matrix (rows = true label, columns = predicted label).

    With ``normalize`` the cells and the colour bar are in percent of the row (true label).
    """
    fig, ax = _axes(ax, (4.8, 4.2))
    cm = np.asarray(confusion, dtype=float)
    # in percent when normalised, so that the colour bar reads like the numbers in the cells
    shown = 100 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=100 if normalize else None)
    k = cm.shape[0]
    if k <= 12:
        dark = 60 if normalize else cm.max() * 0.6
        for i in range(k):
            for j in range(k):
                val = shown[i, j]
                if normalize and val < 0.5:
                    continue
                txt = f"{val:.0f}" if normalize else f"{int(cm[i, j])}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=7,
                        color="white" if val > dark else "#1d2330")
    ticks = np.arange(k)
    names = [str(c) for c in classes]
    ax.set_xticks(ticks, names, rotation=90 if max(map(len, names)) > 3 else 0, fontsize=7)
    ax.set_yticks(ticks, names, fontsize=7)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    n = int(cm.sum())
    ax.set_title(title or f"Confusion matrix (n = {n:,})", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label="% of the true label" if normalize else "count")
    fig.tight_layout()
    return fig


def training_curve(history: Sequence[Any], *, title: str | None = None, ax=None):
    """Loss and validation accuracy per epoch from a list of epoch records.

    Each record needs ``epoch`` and ``train_loss``; ``val_accuracy`` is drawn when present.
    Records may be objects or mappings. Epochs are whole numbers on the x axis.
    """
    fig, ax = _axes(ax, (5.0, 3.0))

    def get(rec, key):
        return rec.get(key) if isinstance(rec, dict) else getattr(rec, key, None)

    epochs = [get(r, "epoch") for r in history]
    loss = [get(r, "train_loss") for r in history]
    lines = ax.plot(epochs, loss, "o-", color=BLUE, label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss (cross-entropy)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    val = [get(r, "val_accuracy") for r in history]
    if any(v is not None for v in val):
        ax2 = ax.twinx()
        lines += ax2.plot(epochs, [v * 100 if v is not None else np.nan for v in val], "s--",
                          color=VERMILLION, label="validation accuracy")
        ax2.set_ylabel("validation accuracy (%)")
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="lower center",
              bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)  # above: covers no point
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10, pad=18)
    fig.tight_layout()
    return fig


def image_grid(
    images: np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "gray",
    ax=None,
):
    """Show N×C×H×W images (values in [0, 1]) in a grid; returns the figure."""
    imgs = np.asarray(images)
    n = len(imgs)
    nrows = max(1, int(np.ceil(n / ncols)))
    if ax is None:
        fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.1, nrows * 1.25))
        axes = np.atleast_1d(axes).ravel()
    else:
        fig, axes = ax.figure, np.atleast_1d(ax).ravel()
    for i, a in enumerate(axes):
        a.axis("off")
        if i >= n:
            continue
        img = imgs[i]
        img = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
        a.imshow(np.clip(img, 0, 1), cmap=cmap if img.ndim == 2 else None, vmin=0, vmax=1)
        if titles is not None:
            a.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig
