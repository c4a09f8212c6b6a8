"""A piecewise-linear black box whose important features per region are known.

Used by the ground-truth test and the benchmark: each region ``r`` (decided by a gating
feature that no region's score uses) has its own small set of relevant features with positive
weights; the class-1 log-odds is that region's linear function, so the truth is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepscope.errors import InputError
from deepscope.explain.explanation import Explanation


@dataclass(frozen=True)
class PiecewiseLinear:
    """The black box and its truth.

    Attributes
    ----------
    weights : ndarray
        ``R×D`` log-odds weights per region (zero outside the relevant features).
    intercepts : ndarray
        ``R`` intercepts.
    gate : int
        The feature that decides the region (thresholds at ``r / R``).
    """

    weights: np.ndarray
    intercepts: np.ndarray
    gate: int

    @property
    def n_regions(self) -> int:
        return len(self.intercepts)

    def region(self, x: np.ndarray) -> np.ndarray:
        """Region of each row (inputs live in [0, 1]^D)."""
        r = np.floor(np.asarray(x)[:, self.gate] * self.n_regions).astype(np.int64)
        return np.clip(r, 0, self.n_regions - 1)

    def logit(self, x: np.ndarray) -> np.ndarray:
        r = self.region(x)
        return np.einsum("ij,ij->i", x, self.weights[r]) + self.intercepts[r]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Two-class probabilities ``[1 - p, p]`` with ``p = sigmoid(logit)``."""
        x = np.asarray(x, dtype=np.float64)
        p1 = 1.0 / (1.0 + np.exp(-self.logit(x)))
        return np.stack([1.0 - p1, p1], axis=1)

    def relevant(self, x: np.ndarray) -> np.ndarray:
        """``N×D`` bool: the truly relevant features of each row's region."""
        return self.weights[self.region(x)] != 0

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` uniform inputs in [0, 1]^D."""
        return np.random.default_rng(seed).random((n, self.weights.shape[1]))


def piecewise_linear(
    n_features: int = 20,
    n_regions: int = 3,
    n_relevant: int = 3,
    *,
    weight_range: tuple[float, float] = (3.0, 6.0),
    seed: int = 0,
) -> PiecewiseLinear:
    """Random piecewise-linear black box; regions use disjoint relevant-feature sets."""
    if n_regions * n_relevant > n_features - 1:
        raise InputError("need n_regions * n_relevant < n_features (one feature is the gate)")
    rng = np.random.default_rng(seed)
    feats = rng.permutation(np.arange(1, n_features))
    weights = np.zeros((n_regions, n_features))
    for r in range(n_regions):
        idx = feats[r * n_relevant : (r + 1) * n_relevant]
        weights[r, idx] = rng.uniform(*weight_range, size=n_relevant)
    centre = weights.sum(axis=1) / 2  # roughly balanced classes in every region
    intercepts = -centre + np.linspace(-2.0, 2.0, n_regions)
    return PiecewiseLinear(weights=weights, intercepts=intercepts, gate=0)


def precision_recall(explanation: Explanation, relevant: np.ndarray, k: int | None = None,
                     by: str = "abs") -> tuple[float, float]:
    """Mean precision and recall of each row's top-k features against ``relevant``.

    ``k`` defaults to the number of relevant features of each row (then precision = recall).
    """
    relevant = np.asarray(relevant, dtype=bool)
    if relevant.shape != explanation.attributions.shape:
        raise InputError(
            f"relevant must be N×F like the attributions {explanation.attributions.shape}, "
            f"got {relevant.shape}"
        )
    n_rel = relevant.sum(axis=1)
    kk = int(n_rel.max()) if k is None else k
    top = explanation.top_features(kk, by=by)
    prec, rec = [], []
    for i in range(len(explanation)):
        ki = int(n_rel[i]) if k is None else k
        hits = relevant[i, top[i, :ki]].sum()
        prec.append(hits / max(ki, 1))
        rec.append(hits / max(int(n_rel[i]), 1))
    return float(np.mean(prec)), float(np.mean(rec))
