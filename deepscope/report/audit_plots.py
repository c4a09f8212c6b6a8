"""Plots of the audit report (drawn from :class:`~deepscope.audit.result.SectionResult`
arrays). Every plot has a title, axis labels with units and Okabe–Ito colours; each takes
``ax=None`` and returns the figure without calling ``show()``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from deepscope.report.plots import BLUE, CYCLE, VERMILLION

__all__ = ["accuracy_vs_eps", "cw_distances", "detection_rates", "layer_accuracy",
           "mask_grid", "repair_rounds"]


def _axes(ax: Any, size: tuple[float, float]) -> tuple[Any, Any]:
    if ax is None:
        return plt.subplots(figsize=size)
    return ax.figure, ax


def layer_accuracy(acc: Mapping[str, float], chosen: str | None, *, n: int, ax: Any = None
                   ) -> Any:
    """Feature-model accuracy per hidden layer; the analysed layer in vermillion."""
    fig, ax = _axes(ax, (5.5, 3.0))
    names = list(acc)
    vals = [100 * acc[k] for k in names]
    ax.bar(range(len(names)), vals, color=[VERMILLION if k == chosen else BLUE for k in names])
    for i, v in enumerate(vals):
        ax.text(i, v + 1, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_xlabel("hidden layer (input → output)")
    ax.set_ylabel("feature-model accuracy (%)")
    ax.set_title(f"Feature-model accuracy per layer (n ≤ {n:,} samples per fit)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def repair_rounds(series: Mapping[str, Mapping[str, np.ndarray]], label_name: str, *,
                  n_test: int, ax: Any = None) -> Any:
    """Label accuracy (solid) and model accuracy (dashed) per round, one colour per strategy."""
    fig, ax = _axes(ax, (5.8, 3.4))
    for i, (name, s) in enumerate(series.items()):
        color = CYCLE[i % len(CYCLE)]
        ax.plot(s["samples"], 100 * s["label_acc"], "o-", color=color,
                label=f"{name}: label {label_name}")
        ax.plot(s["samples"], 100 * s["model_acc"], "s--", color=color, alpha=0.8,
                label=f"{name}: whole model")
    ax.set_xlabel("pool samples added (count)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Repair per round (test role, n = {n_test:,})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def accuracy_vs_eps(eps: Sequence[float], curves: Mapping[str, Sequence[float]], *, n: int,
                    ax: Any = None) -> Any:
    """Accuracy under each attack as the L∞ budget ε grows."""
    fig, ax = _axes(ax, (5.5, 3.3))
    for i, (name, acc) in enumerate(curves.items()):
        ax.plot(eps, 100 * np.asarray(acc, float), "o-" if i == 0 else "s--",
                color=CYCLE[i % len(CYCLE)], label=name)
    ax.set_xlabel("ε (L∞ perturbation, pixel scale 0–1)")
    ax.set_ylabel("accuracy under attack (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Accuracy vs ε (n = {n:,} test inputs)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cw_distances(l2: np.ndarray, success: np.ndarray, *, ax: Any = None) -> Any:
    """Histogram of C&W L2 distances of the successful attacks, with the median marked."""
    fig, ax = _axes(ax, (5.0, 3.0))
    d = np.asarray(l2, float)[np.asarray(success, bool)]
    if len(d):
        ax.hist(d, bins=min(20, max(len(d) // 3, 3)), color=BLUE)
        med = float(np.median(d))
        ax.axvline(med, color=VERMILLION, ls="--", label=f"median {med:.2f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("L2 distance to the adversarial input (pixel scale 0–1)")
    ax.set_ylabel("inputs (count)")
    ax.set_title(f"C&W L2 distances ({len(d)} successful of {len(l2)})", fontsize=10)
    fig.tight_layout()
    return fig


def detection_rates(counts: Mapping[str, Mapping[str, Any]], keys: Sequence[str], *,
                    ax: Any = None) -> Any:
    """Grouped bars: share flagged per detector, for benign inputs (FP) and each attack."""
    fig, ax = _axes(ax, (6.2, 3.3))
    dets = list(counts)
    width = 0.8 / max(len(dets), 1)
    for j, det in enumerate(dets):
        for i, key in enumerate(keys):
            cell = counts[det].get(key)
            if not cell or not cell["n"]:
                continue
            rate = 100 * cell["flagged"] / cell["n"]
            x = i + (j - (len(dets) - 1) / 2) * width
            ax.bar(x, rate, width, color=CYCLE[j % len(CYCLE)],
                   label=det if i == 0 else None)
            ax.text(x, rate + 1, f"{cell['flagged']}/{cell['n']}", ha="center",
                    va="bottom", fontsize=6)
    ax.set_xticks(range(len(keys)), ["benign (FP)" if k == "fp" else k for k in keys],
                  fontsize=8)
    ax.set_ylim(0, 112)
    ax.set_xlabel("input set")
    ax.set_ylabel("flagged (%)")
    ax.set_title("Flagged share per detector (counts above the bars)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def mask_grid(x: np.ndarray, masks: Mapping[str, np.ndarray], titles: Sequence[str],
              *, k: int) -> Any:
    """Rows = inputs; columns = the input, then each method's top-``k`` features (vermillion)."""
    n, cols = len(x), len(masks) + 1
    fig, axes = plt.subplots(n, cols, figsize=(1.9 * cols, 1.9 * n + 0.4), squeeze=False)
    tint = np.array([0xD5, 0x5E, 0x00]) / 255.0
    for i in range(n):
        img = x[i]
        grey = img.mean(axis=0)
        axes[i, 0].imshow(grey, cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(titles[i], fontsize=7)
        for j, (name, m) in enumerate(masks.items(), start=1):
            rgb = np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2) * 0.75
            rgb[m[i]] = 0.35 * rgb[m[i]] + 0.65 * tint
            axes[i, j].imshow(rgb)
            if i == 0:
                axes[i, j].set_title(f"{name}: top {k}", fontsize=8)
    for a in axes.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle("Top features per method (vermillion)", fontsize=10)
    fig.tight_layout()
    return fig

