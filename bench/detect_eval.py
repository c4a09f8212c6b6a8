"""Small measurements of ``bench/detect_table.py``: rates with Wilson intervals, ROC-AUC,
ROC points and the cost of a detector's score relative to one forward pass."""

from __future__ import annotations

import time
from typing import Any

import torch

from deepscope.detect import quantile_threshold, wilson_interval
from deepscope.models import inference

__all__ = ["auc", "crossfit", "rate_ci", "roc_points", "timing"]


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


def crossfit(scores: dict[str, list[float]], sources: dict[str, list[int]],
             fold: dict[int, int], target_fpr: float) -> dict[str, dict[str, Any]]:
    """Counts when the threshold is set on held-out benign faces, cross-fitted over two folds.

    For each fold f, the threshold is the ``target_fpr`` quantile of the held-out and mirrored
    benign scores of the faces in fold f; it is applied to every sample (benign or
    adversarial) whose source test face is in the other fold; the counts of both directions
    are added. ``sources[key][i]`` is the test index sample ``i`` of set ``key`` comes from;
    ``fold[test index]`` is 0 or 1. The calibration (training) faces are left out.
    """
    counts = {k: [0, 0] for k in scores if k != "calib"}
    for f in (0, 1):
        cal = [v for key in ("heldout", "mirror")
               for v, i in zip(scores[key], sources[key], strict=True) if fold[i] == f]
        thr = quantile_threshold(torch.tensor(cal), target_fpr)
        for key in counts:
            for v, i in zip(scores[key], sources[key], strict=True):
                if fold[i] != f:
                    counts[key][0] += int(v > thr)
                    counts[key][1] += 1
    out = {k: rate_ci(*c) for k, c in counts.items()}
    both = [counts["heldout"][j] + counts["mirror"][j] for j in (0, 1)]
    out["benign held-out"] = rate_ci(*both)
    return out
