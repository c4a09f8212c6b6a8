"""Grid of originals, adversarials and perturbations (matplotlib; no ``show()``).

The report package owns the project's plots; this function is the attacks' own and can be
re-exported there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from deepscope.errors import InputError


def _to_nchw(a: Any, name: str) -> np.ndarray:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise InputError(f"{name} must be N×C×H×W with C in (1, 3), got {arr.shape}")
    return arr.astype(np.float64)


def _tile(images: np.ndarray, gap: int) -> np.ndarray:
    """N×H×W×C images side by side, separated by ``gap`` columns of background."""
    n, h, w, c = images.shape
    out = np.ones((h, n * w + (n - 1) * gap, c))
    for i in range(n):
        out[:, i * (w + gap): i * (w + gap) + w] = images[i]
    return out


def plot_grid(
    x: Any, x_adv: Any, *, labels: Sequence[Any] | None = None,
    adv_labels: Sequence[Any] | None = None, class_names: Sequence[str] | None = None,
    max_images: int = 8, title: str | None = None, ax: Axes | None = None,
) -> Figure:
    """Draw three rows: originals, adversarials, and perturbations (grey = unchanged).

    Perturbations are shown as ``0.5 + δ / (2·max|δ|)`` over the shown images (red/blue for
    greyscale via the ``RdBu`` colour map on a separate band is avoided to keep one image:
    brighter = increased, darker = decreased).

    Parameters
    ----------
    x, x_adv : tensor or array, N×C×H×W in [0, 1]
        Originals and adversarial inputs.
    labels, adv_labels : sequence, optional
        Labels shown above the originals and the adversarials.
    class_names : sequence of str, optional
        Names indexed by label.
    max_images : int
        Number of columns (the first images are shown).
    title : str, optional
        Axes title.
    ax : matplotlib Axes, optional
        Draw into it; a new figure is made otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    xo, xa = _to_nchw(x, "x"), _to_nchw(x_adv, "x_adv")
    if xo.shape != xa.shape:
        raise InputError(f"x and x_adv differ in shape: {xo.shape} vs {xa.shape}")
    k = max(1, min(int(max_images), xo.shape[0]))
    xo, xa = xo[:k].transpose(0, 2, 3, 1), xa[:k].transpose(0, 2, 3, 1)
    d = xa - xo
    scale = float(np.abs(d).max()) or 1.0
    dp = 0.5 + d / (2 * scale)
    gap = max(1, xo.shape[2] // 14)
    rows = [_tile(np.clip(r, 0, 1), gap) for r in (xo, xa, dp)]
    sep = np.ones((gap, rows[0].shape[1], rows[0].shape[2]))
    mosaic = np.concatenate([rows[0], sep, rows[1], sep, rows[2]], axis=0)
    if ax is None:
        fig = Figure(figsize=(1.3 * k + 1.2, 4.2))
        ax = fig.subplots()
    fig = ax.figure
    ax.imshow(mosaic[..., 0] if mosaic.shape[2] == 1 else mosaic, cmap="gray",
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    h, w = xo.shape[1], xo.shape[2]
    ax.set_yticks([h / 2, 1.5 * h + gap, 2.5 * h + 2 * gap])
    ax.set_yticklabels(["original", "adversarial", f"δ (±{scale:.2g})"])

    def name(v: Any) -> str:
        v = int(v)
        return str(class_names[v]) if class_names is not None else str(v)

    for i in range(k):
        cx = i * (w + gap) + w / 2
        if labels is not None:
            ax.text(cx, -1, name(labels[i]), ha="center", va="bottom", fontsize=8)
        if adv_labels is not None:
            ax.text(cx, h + gap - 0.5, name(adv_labels[i]), ha="center", va="bottom",
                    fontsize=8, color="tab:red")
    if title:
        ax.set_title(title, pad=12)
    return fig
