"""Overlay of an explanation's top-k features on the input (matplotlib, no pyplot state)."""

from __future__ import annotations

import numpy as np

from deepscope.errors import InputError
from deepscope.explain.explanation import Explanation


def plot_overlay(x, explanation: Explanation, k: int, ax=None, *, index: int = 0, title=None):
    """Draw input ``index`` in grey with its top-``k`` features tinted red.

    Parameters
    ----------
    x : ndarray
        The explained inputs (``N×C×H×W``) or one input (``C×H×W``).
    explanation : Explanation
        Its explanation (one row per input).
    k : int
        Number of top features to show.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    index : int
        Which input.
    title : str, optional
        Axes title (default: method and k).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (``show()`` is never called).
    """
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or len(explanation.input_shape) != 3:
        raise InputError("plot_overlay needs images (N×C×H×W) and an image explanation")
    if not 0 <= index < min(len(x), len(explanation)):
        raise InputError(f"index {index} out of range for {min(len(x), len(explanation))} inputs")
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(2.4, 2.4))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    img = x[index]
    grey = img.mean(axis=0) if img.shape[0] != 3 else img.transpose(1, 2, 0).mean(axis=2)
    mask = explanation[index].feature_mask(k)[0].any(axis=0)
    rgb = np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2) * 0.75
    rgb[mask] = 0.45 * rgb[mask] + 0.55 * np.array([1.0, 0.1, 0.1])
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title if title is not None else f"{explanation.method}, top {k}", fontsize=8)
    return fig
