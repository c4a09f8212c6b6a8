"""Fidelity tests on a hand-made black box whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from deepscope.errors import InputError
from deepscope.explain import Explanation, GridSpace, fidelity


def _explanation(x, good: bool):
    """Attributions that put the block (cell 0) first, or last."""
    space = GridSpace(2).fit(x)
    attr = np.tile([4.0, 3.0, 2.0, 1.0] if good else [1.0, 2.0, 3.0, 4.0], (len(x), 1))
    return Explanation("hand", 1, attr, space.segments_, (1, 4, 4))


def test_deduction_right_and_wrong_features(block_model, block_data):
    good, bad = _explanation(block_data, True), _explanation(block_data, False)
    for baseline in ("zero", "mean"):
        ref = np.zeros_like(block_data) if baseline == "mean" else None
        assert fidelity.deduction(block_model, block_data, good, 1, target=1,
                                  baseline=baseline, reference=ref) == 1.0
    assert fidelity.deduction(block_model, block_data, bad, 3, target=1) == 0.0
    # blur: the nullified cell takes the blurred image's values, the rest is untouched
    res = fidelity.generate("deduction", block_model, block_data, good, 1, 1, baseline="blur")
    blurred = gaussian_filter(block_data[:20], sigma=(0, 0, 2, 2), mode="nearest")
    np.testing.assert_allclose(res.generated[:, 0, :2, :2], blurred[:, 0, :2, :2], rtol=1e-6)
    np.testing.assert_array_equal(res.generated[:, 0, 2:], block_data[:20, 0, 2:])


def test_augmentation_and_synthetic(block_model, block_data):
    good, bad = _explanation(block_data, True), _explanation(block_data, False)
    assert fidelity.augmentation(block_model, block_data, good, 1, target=1) == 1.0
    assert fidelity.augmentation(block_model, block_data, bad, 3, target=1) == 0.0
    dark_noise = {"noise_range": (0.0, 0.2)}
    assert fidelity.synthetic(block_model, block_data, good, 1, target=1, **dark_noise) == 1.0
    assert fidelity.synthetic(block_model, block_data, bad, 3, target=1, **dark_noise) == 0.0


def test_generate_keeps_samples_and_never_scales(block_model, block_data):
    good = _explanation(block_data, True)
    neg = block_data[20:]
    res = fidelity.generate("augmentation", block_model, block_data, good, 1, 1,
                            negatives=neg, n_pairs=2, seed=0)
    assert res.n == 40 and res.generated.shape == (40, 1, 4, 4)
    src = block_data[res.source]
    # transplanted pixels are copied exactly, the others come from a negative
    np.testing.assert_array_equal(res.generated[:, 0, :2, :2], src[:, 0, :2, :2])
    assert res.to_dict() == {"test": "augmentation", "k": 1, "share": 1.0, "n": 40}
    again = fidelity.generate("augmentation", block_model, block_data, good, 1, 1,
                              negatives=neg, n_pairs=2, seed=0)
    np.testing.assert_array_equal(res.generated, again.generated)


def test_fidelity_validation(block_model, block_data):
    good = _explanation(block_data, True)
    with pytest.raises(InputError, match="rows"):
        fidelity.deduction(block_model, block_data[:5], good, 1, target=1)
    with pytest.raises(InputError, match="k must"):
        fidelity.deduction(block_model, block_data, good, 9, target=1)
    with pytest.raises(InputError, match="out of range"):
        fidelity.deduction(block_model, block_data, good, 1, target=2)
    with pytest.raises(InputError, match="no row"):
        fidelity.deduction(block_model, block_data[20:], good[20:], 1, target=1)
    with pytest.raises(InputError, match="negatives"):
        fidelity.augmentation(block_model, block_data[:20], good[:20], 1, target=1)
    with pytest.raises(InputError, match="unknown fidelity"):
        fidelity.generate("inversion", block_model, block_data, good, 1, 1)
    with pytest.raises(InputError, match="Explanation"):
        fidelity.deduction(block_model, block_data, good.attributions, 1, target=1)
