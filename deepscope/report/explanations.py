"""Explanations side by side: run several explainers on the same inputs and draw overlays.

Used by ``deepscope explain`` and the demo report, so both show the same thing.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from deepscope import explain
from deepscope.errors import InputError


@dataclass(frozen=True)
class ExplainRun:
    """One explainer's explanation of a batch, with its cost."""

    method: str
    explanation: explain.Explanation
    seconds: float
    queries: int | None

    def to_dict(self) -> dict:
        return {"method": self.method, "seconds": self.seconds, "queries": self.queries,
                "n": len(self.explanation)}


def build_explainer(method: str, model: torch.nn.Module, *, cell: int = 2, seed: int = 0,
                    progress: bool = False, **params) -> explain.Explainer:
    """Build a registered explainer on a ``cell``×``cell`` grid feature space.

    Only the keywords an explainer accepts are passed (white-box explainers get ``model``).
    """
    cls = explain.EXPLAINERS.get(method)
    accepted = inspect.signature(cls.__init__).parameters
    offered = {"model": model, "space": explain.GridSpace(cell), "seed": seed,
               "progress": progress, **params}
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InputError(f"explainer {method!r} takes no parameter(s) {unknown}")
    return cls(**{k: v for k, v in offered.items() if k in accepted})


def explain_side_by_side(
    model: torch.nn.Module,
    x: torch.Tensor,
    target: int,
    methods: Sequence[str] = ("dmm-men", "lime", "kernel-shap"),
    *,
    fit_x: torch.Tensor | None = None,
    cell: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> list[ExplainRun]:
    """Explain ``x`` (all assigned to class ``target``) with each method in turn.

    ``fit_x`` (default ``x``) is what fitted explainers (DMM-MEN) learn from; one fit serves
    every explained input.
    """
    predict = explain.model_proba(model)
    xs = x.detach().cpu().numpy()
    xf = xs if fit_x is None else fit_x.detach().cpu().numpy()
    runs = []
    for method in methods:
        explainer = build_explainer(method, model, cell=cell, seed=seed, progress=progress)
        start = time.perf_counter()
        explainer.fit(xf, predict, target=target)
        explanation = explainer.explain(xs)
        seconds = time.perf_counter() - start
        queries = getattr(getattr(explainer, "black_box_", None), "queries", None)
        runs.append(ExplainRun(method, explanation, seconds, queries))
    return runs


def overlay_grid(x: torch.Tensor, runs: Sequence[ExplainRun], k: int, *, n_show: int = 4):
    """Rows = inputs, columns = the input and each method's top-``k`` features (red)."""
    xs = x.detach().cpu().numpy()
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


def positives(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, target: int,
              n: int) -> torch.Tensor:
    """Indices of up to ``n`` inputs of label ``target`` that the model assigns to it."""
    from deepscope.models import predict_logits

    idx = torch.nonzero(y == target).flatten()
    if len(idx) == 0:
        raise InputError(f"no inputs of class {target} to explain")
    pred = predict_logits(model, x[idx]).argmax(1)
    chosen = idx[pred == target][:n]
    if len(chosen) == 0:
        raise InputError(f"the model assigns none of the class-{target} inputs to class {target}")
    return chosen


def top_feature_table(runs: Sequence[ExplainRun], k: int) -> list[dict]:
    """Per method: seconds, queries and the top-k features of the first input."""
    rows = []
    for run in runs:
        top = np.asarray(run.explanation.top_features(k))[0].tolist()
        rows.append({"method": run.method, "seconds": round(run.seconds, 2),
                     "queries": run.queries if run.queries is not None else "—",
                     f"top-{k} features of input 1": ", ".join(map(str, top))})
    return rows
