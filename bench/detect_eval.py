"""Small measurements of ``bench/detect_table.py``: rates with Wilson intervals, ROC-AUC,
ROC points and the cost of a detector's score relative to one forward pass."""

from __future__ import annotations

import time
from typing import Any

import torch

from deepscope._stats import wilson_interval
from deepscope.models import inference

__all__ = ["auc", "rate_ci", "roc_points", "timing"]


def rate_ci(k: int, n: int) -> dict[str, Any]:
    """``{"k", "n", "rate", "lo", "hi"}`` with the 95 % Wilson interval (None when n = 0)."""
    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "lo": None, "hi": None}
    lo, hi = wilson_interval(int(k), int(n))
    return {"k": int(k), "n": int(n), "rate": k / n, "lo": lo, "hi": hi}


def auc(neg: list[float], pos: list[float]) -> float:
    """ROC-AUC = P(score of a positive > score of a negative), ties counted half."""
    a, b = torch.tensor(neg, dtype=torch.float64), torch.tensor(pos, dtype=torch.float64)
    gt = (b[:, None] > a[None, :]).double().sum()
    eq = (b[:, None] == a[None, :]).double().sum()
    return float((gt + 0.5 * eq) / (len(a) * len(b)))


def roc_points(neg: list[float], pos: list[float]) -> tuple[list[float], list[float]]:
    """False- and true-positive rates at every threshold (scores > threshold flagged)."""
    thr = sorted(set(neg) | set(pos), reverse=True)
    a, b = torch.tensor(neg), torch.tensor(pos)
    fpr, tpr = [0.0], [0.0]
    for t in thr:
        fpr.append(float((a >= t).double().mean()))
        tpr.append(float((b >= t).double().mean()))
    return fpr, tpr


def timing(model: torch.nn.Module, det: Any, x: torch.Tensor, repeats: int = 3
           ) -> dict[str, float]:
    """Best-of-``repeats`` seconds of one forward pass and of ``det.score`` on ``x``."""
    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    def forward() -> None:
        with inference(model):
            model(x)

    t_model, t_det = best(forward), best(lambda: det.score(x))
    return {"model_s": t_model, "score_s": t_det, "ratio": t_det / t_model, "batch": len(x)}
