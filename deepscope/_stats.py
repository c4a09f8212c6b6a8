"""Small statistics shared by result objects and reports (no deepscope imports)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bootstrap_mean", "paired_difference", "wilson_interval"]


def wilson_interval(k: int, n: int, *, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (95 % by default).

    Unlike the normal approximation it stays inside [0, 1] and is honest for small ``n`` and
    for ``k`` in {0, n} (e.g. 0/8 → [0, 0.32]).

    Parameters
    ----------
    k, n : int
        Successes and trials, ``0 <= k <= n``, ``n >= 1``.
    z : float
        Normal quantile (1.96 for 95 %).

    Returns
    -------
    (float, float)
        Lower and upper bound.
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean(values, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
                   ) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap confidence interval.

    Parameters
    ----------
    values : array-like
        One number per unit (e.g. 1/0 success per explained sample).
    n_boot : int
        Bootstrap resamples (of the units, with replacement).
    level : float
        Coverage of the interval (0.95 = 95 %).
    seed : int
        Seed of the resampling.

    Returns
    -------
    (float, float, float)
        Mean, lower bound, upper bound.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("bootstrap_mean needs at least one value")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(v.mean()), float(lo), float(hi)


def paired_difference(a, b, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
                      ) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired units and its bootstrap interval (units resampled).

    ``a`` and ``b`` hold one number per unit, measured on the same units (e.g. two explainers'
    successes on the same explained samples), so the interval accounts for the pairing.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values must have one shape, got {a.shape} and {b.shape}")
    return bootstrap_mean(a - b, n_boot=n_boot, level=level, seed=seed)
