"""Small statistics shared by result objects and reports (no deepscope imports)."""

from __future__ import annotations

import math

__all__ = ["wilson_interval"]


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
