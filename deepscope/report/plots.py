"""Matplotlib plots for deepscope results.

Every function takes ``ax=None`` (a new figure is created when omitted), returns the figure and
never calls ``show()``. Only this module imports matplotlib's pyplot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np


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
        Labels to mark in red (e.g. labels with a bug).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, (7.0, 3.2))
    acc = np.asarray(per_label, dtype=float) * 100
    k = len(acc)
    pos = np.arange(k)
    width = 0.4 if compare is not None else 0.7
    colors = ["#d64545" if i in set(highlight) else "#3e7cb1" for i in range(k)]
    ax.bar(pos - (width / 2 if compare is not None else 0), acc, width, color=colors,
           label=labels[0])
    if compare is not None:
        ax.bar(pos + width / 2, np.asarray(compare, float) * 100, width, color="#b8c4d6",
               label=labels[1])
        ax.legend(loc="lower right", fontsize=8)
    for i, a in enumerate(acc):
        ax.text(pos[i] - (width / 2 if compare is not None else 0), a + 0.5, f"{a:.0f}",
                ha="center", va="bottom", fontsize=7)
    ax.set_xticks(pos, [str(c) for c in classes], rotation=30 if max(map(len, classes)) > 3 else 0,
                  fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(max(0.0, min(acc.min(), 100 if compare is None else np.min(compare) * 100) - 10),
                101)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def confusion_matrix(
    confusion: np.ndarray,
    classes: Sequence[str],
    *,
    normalize: bool = True,
    ax=None,
):
    """Heat map of a confusion matrix (rows = true label, columns = predicted label)."""
    fig, ax = _axes(ax, (4.8, 4.2))
    cm = np.asarray(confusion, dtype=float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    k = cm.shape[0]
    if k <= 12:
        for i in range(k):
            for j in range(k):
                val = shown[i, j]
                txt = f"{val * 100:.0f}" if normalize else f"{int(cm[i, j])}"
                if normalize and val < 0.005:
                    continue
                ax.text(j, i, txt, ha="center", va="center", fontsize=7,
                        color="white" if (val > 0.6 if normalize else val > cm.max() * 0.6)
                        else "#1d2330")
    ticks = np.arange(k)
    names = [str(c) for c in classes]
    ax.set_xticks(ticks, names, rotation=90 if max(map(len, names)) > 3 else 0, fontsize=7)
    ax.set_yticks(ticks, names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label="share of the true label" if normalize else "count")
    fig.tight_layout()
    return fig


def training_curve(history: Sequence[Any], *, ax=None):
    """Loss and validation accuracy per epoch from a list of epoch records.

    Each record needs ``epoch`` and ``train_loss``; ``val_accuracy`` is drawn when present.
    Records may be objects or mappings.
    """
    fig, ax = _axes(ax, (5.0, 3.0))

    def get(rec, key):
        return rec.get(key) if isinstance(rec, dict) else getattr(rec, key, None)

    epochs = [get(r, "epoch") for r in history]
    loss = [get(r, "train_loss") for r in history]
    ax.plot(epochs, loss, "o-", color="#3e7cb1", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss")
    val = [get(r, "val_accuracy") for r in history]
    if any(v is not None for v in val):
        ax2 = ax.twinx()
        ax2.plot(epochs, [v * 100 if v is not None else np.nan for v in val], "s--",
                 color="#d64545", label="validation accuracy")
        ax2.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
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
