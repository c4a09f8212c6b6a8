"""The Explanation result: ranking, masks, slicing, export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.explain import Explanation, GridSpace, load_npz, save_npz


def _explanation(n=3, seed=0):
    space = GridSpace(2).fit(np.zeros((1, 1, 4, 4)))
    attr = np.random.default_rng(seed).normal(size=(n, 4))
    return Explanation(
        method="test",
        target=1,
        attributions=attr,
        segments=space.segments_,
        input_shape=(1, 4, 4),
        component=np.arange(n),
        extras={"a": np.float64(1.5), "b": np.arange(2)},
    )


def test_top_features_order_and_ranking_modes():
    e = Explanation("t", 0, np.array([[0.1, -3.0, 2.0, 0.5]]), np.arange(4), (4,))
    assert e.top_features(2).tolist() == [[2, 3]]
    assert e.top_features(2, by="abs").tolist() == [[1, 2]]
    assert e.top_features(4).shape == (1, 4)


def test_feature_mask_matches_top_features():
    e = _explanation()
    for k in (1, 2, 4):
        top = e.top_features(k)
        mask = e.feature_mask(k)
        assert mask.shape == (3, 1, 4, 4) and mask.dtype == bool
        assert np.all(mask.reshape(3, -1).sum(axis=1) == 4 * k)  # 2×2 cells
        seg = e.segments
        for i in range(3):
            assert set(np.unique(seg[mask[i, 0]])) == set(top[i].tolist())


def test_per_sample_segments_and_nan_features():
    seg = np.stack([np.array([[0, 1], [1, 1]]), np.array([[0, 0], [0, 0]])])
    attr = np.array([[1.0, 2.0], [5.0, np.nan]])
    e = Explanation("t", 0, attr, seg, (1, 2, 2))
    assert e.per_sample_segments
    assert e.top_features(1).tolist() == [[1], [0]]
    mask = e.feature_mask(2)
    assert mask[0].all() and mask[1].all()
    sel = e.feature_selection(2)
    assert not sel[1, 1]  # a missing feature is never selected


def test_k_validation():
    e = _explanation()
    for bad in (0, 5, 2.5, True):
        with pytest.raises(InputError):
            e.top_features(bad)
    with pytest.raises(InputError, match="by must"):
        e.top_features(1, by="signed")


def test_slicing_keeps_rows():
    e = _explanation(5)
    sub = e[1:3]
    assert len(sub) == 2
    np.testing.assert_array_equal(sub.attributions, e.attributions[1:3])
    np.testing.assert_array_equal(sub.component, [1, 2])
    assert len(e[4]) == 1
    mask = np.array([True, False, True, False, False])
    assert len(e[mask]) == 2


def test_to_dict_is_json():
    e = _explanation()
    d = e.to_dict()
    text = json.dumps(d)
    assert d["method"] == "test" and d["n_features"] == 4 and d["target"] == 1
    assert json.loads(text)["extras"]["b"] == [0, 1]


def test_save_and_load_npz(tmp_path):
    e = _explanation()
    path = save_npz(e, tmp_path / "sub" / "exp.npz")
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["exp.npz"]  # no temp file left
    back = load_npz(path)
    np.testing.assert_array_equal(back.attributions, e.attributions)
    np.testing.assert_array_equal(back.top_features(2), e.top_features(2))
    assert back.method == "test" and back.target == 1 and back.input_shape == (1, 4, 4)
    with pytest.raises(InputError, match="npz"):
        save_npz(e, tmp_path / "exp.txt")
