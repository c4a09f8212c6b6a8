"""Drawing a :class:`~deepscope.explain.compare.Comparison`: overlays and a top-feature table.

The explanations are computed by :func:`deepscope.explain.compare.side_by_side`; this module
only renders the result (used by ``deepscope explain`` and the demo report, so both show the
same thing).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from deepscope import explain
from deepscope.explain.compare import Comparison

__all__ = ["overlay_grid", "top_feature_table"]


def overlay_grid(result: Comparison, k: int, *, n_show: int = 4) -> Any:
    """Rows = inputs, columns = the input and each method's top-``k`` features (red).

    Parameters
    ----------
    result : Comparison
        What :func:`~deepscope.explain.compare.side_by_side` returned.
    k : int
        Number of top features drawn.
    n_show : int
        Number of inputs (rows) drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    xs = np.asarray(result.x)
    runs = result.runs
    n = min(n_show, len(xs))
    fig, axes = plt.subplots(n, len(runs) + 1, figsize=(1.9 * (len(runs) + 1), 1.9 * n),
                             squeeze=False)
    for i in range(n):
        img = xs[i]
        axes[i, 0].imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0),
                          cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_xticks([])
        axes[i, 0].set_yticks([])
        axes[i, 0].set_title("input" if i == 0 else "", fontsize=8)
        for j, run in enumerate(runs, start=1):
            explain.plot_overlay(xs, run.explanation, k, ax=axes[i, j], index=i,
                                 title=run.method if i == 0 else "")
    fig.tight_layout()
    return fig


def top_feature_table(result: Comparison, k: int) -> list[dict[str, Any]]:
    """Per method: seconds, queries and the top-k features of the first input."""
    rows = []
    for run in result.runs:
        top = np.asarray(run.explanation.top_features(k))[0].tolist()
        rows.append({"method": run.method, "seconds": round(run.seconds, 2),
                     "queries": run.queries if run.queries is not None else "—",
                     f"top-{k} features of input 1": ", ".join(map(str, top))})
    return rows
