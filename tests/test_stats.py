"""Bootstrap intervals and paired differences of deepscope._stats."""

from __future__ import annotations

import numpy as np
import pytest

from deepscope import _stats


def test_bootstrap_mean_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.random(20) < 0.3
    large = rng.random(2000) < 0.3
    m, lo, hi = _stats.bootstrap_mean(small, seed=1)
    assert lo <= m <= hi and m == pytest.approx(small.mean())
    _, lo2, hi2 = _stats.bootstrap_mean(large, seed=1)
    assert hi2 - lo2 < (hi - lo) / 3 and lo2 < 0.3 < hi2
    assert _stats.bootstrap_mean(small, seed=1) == (m, lo, hi)  # seeded
    assert _stats.bootstrap_mean([1, 1, 1]) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        _stats.bootstrap_mean([])


def test_paired_difference_uses_the_pairing():
    rng = np.random.default_rng(0)
    base = rng.random(200)
    a, b = base + 0.02, base  # a beats b on every unit, by a little
    d, lo, hi = _stats.paired_difference(a, b)
    assert d == pytest.approx(0.02) and lo == pytest.approx(0.02) and hi == pytest.approx(0.02)
    # unpaired, the same shift would be lost in the spread of base
    _, ulo, _ = _stats.bootstrap_mean(a)
    assert ulo < b.mean()
    with pytest.raises(ValueError, match="shape"):
        _stats.paired_difference(a, b[:-1])
