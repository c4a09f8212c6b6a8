"""Explanation-guided patching on tiny synthetic byte sequences (fast, no dataset)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepscope.debug import patching as pt
from deepscope.debug.patching_result import PatchingResult
from deepscope.errors import InputError
from deepscope.models.taggers import cnn_tagger

T = 24


class RuleTagger(nn.Module):
    """Says "start" exactly where the byte id is 5 (hand-set, so its errors are known)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = (x == 5).float()
        return torch.stack([1 - start, start], dim=-1)


def _task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids 2..9; a function starts at a 5 that follows a 3 (the rule tagger misses the
    context, so it has false positives at other 5s and false negatives nowhere)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2, 10, size=(n, T)).astype(np.int64)
    x[:, -3:] = 0  # padding at the end of every window
    y = np.zeros_like(x)
    y[:, 1:] = (x[:, 1:] == 5) & (x[:, :-1] == 3)
    return x, y


def _neighbours(x, positions, classes, k):
    """A hand-made explainer: the position itself, then p-1, p+1, p-2, ... (clipped)."""
    offsets = [0, -1, 1, -2, 2, -3, 3][:k]
    return np.clip(positions[:, None] + np.array(offsets)[None], 0, x.shape[1] - 1)


def test_find_errors_matches_the_rule():
    x, y = _task(50, 0)
    y[0, :] = 0
    y[0, 4] = 1
    x[0, 4] = 7  # a start the rule misses: one false negative
    errors = pt.find_errors(RuleTagger(), (x, y))
    pred = x == 5
    fp = pred & (y == 0) & (x != 0)
    fn = ~pred & (y == 1) & (x != 0)
    assert errors.count(pt.FALSE_POSITIVE) == fp.sum() > 0
    assert errors.count(pt.FALSE_NEGATIVE) == fn.sum() == 1
    i = int(np.flatnonzero(errors.kinds == pt.FALSE_NEGATIVE)[0])
    assert (errors.rows[i], errors.positions[i]) == (0, 4)
    capped = pt.find_errors(RuleTagger(), (x, y), max_each=3, seed=1)
    assert capped.count(pt.FALSE_POSITIVE) == 3 and capped.count(pt.FALSE_NEGATIVE) == 1


def test_explained_changes_leave_out_the_error_position_and_ask_the_wrong_class():
    x, _ = _task(4, 1)
    errors = pt.Errors(np.array([0, 1]), np.array([5, 9]), np.array([0, 1]))
    seen = {}

    def explain(xs, positions, classes, k):
        seen.update(classes=classes.tolist(), k=k, rows=len(xs))
        return _neighbours(xs, positions, classes, k)

    changed = pt.explained_changes(x, errors, explain, 2)
    assert seen == {"classes": [0, 1], "k": 3, "rows": 2}  # FN → class 0, FP → class 1
    assert changed.tolist() == [[4, 6], [8, 10]]
    first = pt.explained_changes(x, errors, lambda xs, p, c, k: np.tile([3, 5, 7], (2, 1)), 2)
    assert first.tolist() == [[3, 7], [3, 5]]  # the error's own position is skipped
    with pytest.raises(InputError, match="must return 2×3"):
        pt.explained_changes(x, errors, lambda *a: np.zeros((2, 2), np.int64), 2)
    with pytest.raises(InputError, match="distinct"):
        pt.explained_changes(x, errors, lambda *a: np.tile([5, 5, 5], (2, 1)), 2)
    with pytest.raises(InputError, match="outside"):
        pt.explained_changes(x, errors, lambda *a: np.full((2, 3), T), 2)


def test_craft_rewrites_the_changed_bytes_with_lemnas_values_and_copies():
    x, y = _task(3, 2)
    y[2, 7] = 1
    errors = pt.Errors(np.array([0, 2]), np.array([5, 9]), np.array([0, 1]))  # FN, FP
    changed = np.array([[3, 7], [7, 11]])
    cx, cy = pt.craft(x, y, errors, changed)
    assert len(cx) == 3 + 4
    fn, fp = cx[0], cx[3]
    assert (cx[:3] == fn).all() and (cx[3:] == fp).all()
    assert fn[[3, 7]].tolist() == [1, 1]  # byte 0x00 (id 1)
    assert fp[[7, 11]].tolist() == [0, 0]  # nullified
    keep = np.setdiff1d(np.arange(T), [3, 7])
    assert (fn[keep] == x[0, keep]).all() and fn[5] == x[0, 5]
    assert cy[3, 7] == 0 and cy[3, 9] == y[2, 9]  # changed positions labelled "no start"
    same, same_y = pt.craft(x, y, errors, np.zeros((2, 0), np.int64))  # the "unchanged" arm
    assert (same[:3] == x[0]).all() and (same[3:] == x[2]).all() and (same_y[3:] == y[2]).all()
    cx2, _ = pt.craft(x, y, errors, changed, pt.PatchSettings(copies_fn=1, copies_fp=2))
    assert len(cx2) == 3
    with pytest.raises(InputError, match="one row per error"):
        pt.craft(x, y, errors, changed[:1])


def test_random_changes_stay_in_the_window_off_padding_and_follow_the_seed():
    x, _ = _task(20, 3)
    errors = pt.Errors(np.arange(20), np.full(20, 10), np.zeros(20, np.int64))
    a = pt.random_changes(x, errors, 2, window=9, seed=0)
    b = pt.random_changes(x, errors, 2, window=9, seed=0)
    c = pt.random_changes(x, errors, 2, window=9, seed=1)
    assert (a == b).all() and not (a == c).all()
    assert ((a >= 6) & (a <= 14) & (a != 10)).all()
    assert (a[:, 0] != a[:, 1]).all()
    edge = pt.Errors(np.array([0]), np.array([T - 2]), np.array([1]))  # window mostly padding
    d = pt.random_changes(x, edge, 2, window=9, seed=0)
    assert (x[0, d[0]] != 0).all() and len(set(d[0])) == 2 and (d[0] >= 18).all()


@pytest.fixture(scope="module")
def tagger():
    torch.manual_seed(0)
    model = cnn_tagger(2, vocab_size=10, embed=4, channels=8, dilations=(1,))
    x, y = _task(300, 4)
    from deepscope import models

    models.fit(model, (torch.from_numpy(x), torch.from_numpy(y)), epochs=1, lr=3e-3,
               class_weight=[1.0, 3.0], patience=None, seed=0, progress=False)
    return model


def test_patching_experiment_pairs_the_arms_by_seed_and_round_trips(tagger, tmp_path):
    pool, replay, test = _task(120, 5), _task(200, 6), _task(150, 7)
    before = [p.detach().clone() for p in tagger.parameters()]
    result = pt.patching_experiment(
        tagger, pool, replay, test, _neighbours, seeds=(0, 1), max_errors=20,
        explainer="neighbours", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, tagger.parameters(), strict=True))
    assert [(a.arm, a.seed) for a in result.arms] == [
        ("explained", 0), ("random", 0), ("explained", 1), ("random", 1)]
    n = 3 * result.n_fn + 4 * result.n_fp
    assert n > 0 and {a.n_crafted for a in result.arms} == {n}
    paired = result.paired()
    for m in ("fp", "fn", "errors", "f1"):
        d = [getattr(e.counts, m) - getattr(r.counts, m)
             for e, r in zip(result.arm("explained"), result.arm("random"), strict=True)]
        assert paired[m]["differences"] == pytest.approx(d)
    assert all(a.counts.errors == a.counts.fp + a.counts.fn for a in result.arms)
    assert result.before.fp + result.before.tp == int(
        (tagger(torch.from_numpy(test[0])).argmax(-1).numpy() == 1)[test[0] != 0].sum())
    path = result.save(tmp_path / "p.npz")
    back = PatchingResult.load(path)
    assert back.to_dict() == result.to_dict()
    assert (back.explained_positions == result.explained_positions).all()


def test_patching_refuses_no_seeds_and_a_pool_without_errors(tagger):
    pool = _task(20, 8)
    with pytest.raises(InputError, match="at least one seed"):
        pt.patching_experiment(tagger, pool, pool, pool, _neighbours, seeds=(), progress=False)
    with pytest.raises(InputError, match="arms must be some of"):
        pt.patching_experiment(tagger, pool, pool, pool, _neighbours, arms=("lemna",),
                               progress=False)
    x, _ = pool
    perfect = (x, (RuleTagger()(torch.from_numpy(x)).argmax(-1).numpy() * (x != 0)))
    with pytest.raises(InputError, match="no error"):
        pt.patching_experiment(RuleTagger(), perfect, perfect, perfect, _neighbours,
                               seeds=(0,), progress=False)


def test_fine_tuning_recalibrates_the_threshold_on_the_given_data(tagger):
    replay, calib = _task(200, 9), _task(200, 10)
    crafted = _task(20, 11)
    off = pt.fine_tune(tagger, replay, crafted, pt.PatchSettings(recalibrate=False), seed=0)
    on = pt.fine_tune(tagger, replay, crafted, pt.PatchSettings(), calibration=calib, seed=0)
    same_weights = [torch.equal(a, b) for (na, a), (_, b) in
                    zip(off.named_parameters(), on.named_parameters(), strict=True)
                    if na != "head.bias"]
    assert all(same_weights)
    assert not torch.equal(off.head.bias, on.head.bias)
    assert pt.error_counts(on, calib).f1 >= pt.error_counts(off, calib).f1
