"""Feature spaces: segmentation, feature values, masks and fills."""

from __future__ import annotations

import numpy as np
import pytest

from deepscope.errors import InputError, NotFittedError
from deepscope.explain import (
    GridSpace,
    PixelSpace,
    SuperpixelSpace,
    TabularSpace,
    fill_values,
)


def test_grid_segmentation_and_transform():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    space = GridSpace(2).fit(x)
    assert space.n_features_ == 4
    assert space.segments_.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    feats = space.transform(x)
    # feature 0 of image 0 = mean of pixels 0, 1, 4, 5
    assert feats[0, 0] == pytest.approx(np.mean([0, 1, 4, 5]))
    assert feats.shape == (2, 4)


def test_grid_uneven_cells():
    x = np.zeros((1, 1, 5, 5), dtype=np.float32)
    space = GridSpace(2).fit(x)
    assert space.n_features_ == 9
    assert space.segments_[4, 4] == 8


def test_mask_and_nullify_cover_exactly_the_chosen_features():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.0, size=(3, 2, 4, 4)).astype(np.float32)
    space = GridSpace(2).fit(x)
    off = np.zeros((3, 4), dtype=bool)
    off[0, 1] = True
    off[2, [0, 3]] = True
    mask = space.to_input_mask(off, x)
    assert mask.shape == x.shape
    assert mask[0, :, :2, 2:].all() and mask[0].sum() == 2 * 4
    assert not mask[1].any()
    assert mask[2].sum() == 2 * 8
    out = space.nullify(x, off, np.zeros_like(x))
    assert np.all(out[mask] == 0) and np.all(out[~mask] == x[~mask])


def test_fill_values_zero_mean_blur():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(4, 1, 6, 6)).astype(np.float32)
    assert not fill_values(x, "zero").any()
    ref = np.ones((10, 1, 6, 6), dtype=np.float32) * 0.25
    assert np.allclose(fill_values(x, "mean", reference=ref), 0.25)
    assert np.allclose(fill_values(x, "mean")[0], x.mean(axis=0))
    blur = fill_values(x, "blur", sigma=1.0)
    assert blur.shape == x.shape and blur.std() < x.std()
    with pytest.raises(InputError, match="unknown baseline"):
        fill_values(x, "noise")
    with pytest.raises(InputError, match="images"):
        fill_values(x.reshape(4, -1), "blur")


def test_pixel_space_top_variance():
    rng = np.random.default_rng(0)
    x = np.zeros((50, 1, 5, 5), dtype=np.float32)
    x[:, 0, 2, 3] = rng.uniform(size=50)
    x[:, 0, 0, 0] = rng.uniform(size=50) * 0.5
    space = PixelSpace(top=2).fit(x)
    assert space.n_features_ == 2
    assert space.segments_[2, 3] >= 0 and space.segments_[0, 0] >= 0
    assert (space.segments_ >= 0).sum() == 2
    # positions outside every feature are never touched
    off = np.ones((50, 2), dtype=bool)
    out = space.nullify(x + 1, off, np.zeros_like(x))
    assert out[0, 0, 1, 1] == 1 and out[0, 0, 2, 3] == 0
    assert PixelSpace().fit(x).n_features_ == 25


def test_superpixels_shared_and_per_sample():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 1, 28, 28)).astype(np.float32)
    shared = SuperpixelSpace(n_segments=30).fit(x)
    assert 5 <= shared.n_features_ <= 60
    assert shared.segments(x).shape == (3, 28, 28)
    per = SuperpixelSpace(n_segments=30, per_sample=True).fit(x)
    segs = per.segments(x)
    assert segs.shape == (3, 28, 28) and not per.shared
    assert not np.array_equal(segs[0], segs[1])
    with pytest.raises(InputError, match="shared"):
        per.transform(x)


def test_tabular_space():
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    space = TabularSpace().fit(x)
    assert space.n_features_ == 4
    np.testing.assert_allclose(space.transform(x), x)
    mask = space.to_input_mask(np.array([[True, False, False, True]] * 3), x)
    assert mask.shape == x.shape and mask[:, [0, 3]].all() and not mask[:, 1:3].any()


def test_space_errors():
    with pytest.raises(NotFittedError):
        GridSpace(2).segments(np.zeros((1, 1, 4, 4)))
    space = GridSpace(2).fit(np.zeros((1, 1, 4, 4)))
    with pytest.raises(InputError, match="do not match"):
        space.transform(np.zeros((1, 1, 6, 6)))
    with pytest.raises(InputError, match="N×C×H×W"):
        GridSpace(2).fit(np.zeros((4, 4)))
    with pytest.raises(InputError, match="NaN"):
        GridSpace(2).fit(np.full((1, 1, 4, 4), np.nan))
    with pytest.raises(InputError, match="cell must be >= 1"):
        GridSpace(0).fit(np.zeros((1, 1, 4, 4)))
    with pytest.raises(InputError, match="top"):
        PixelSpace(top=100).fit(np.zeros((2, 1, 4, 4)))
