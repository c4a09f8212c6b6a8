"""repair: improves the buggy label, never mutates its input, resumes after interruption."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepscope.debug import Bug, repair
from deepscope.errors import InputError, RegistryError

BUG = Bug(1, "underfit", 0.0, 0.0, "test", 0.0)
KW = dict(budget=400, batch=200, epochs_per_round=3, lr=1e-3, until_fixed=False,
          progress=False)


def _params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_repair_lifts_the_label_and_keeps_the_input(buggy, split):
    model, train = buggy
    before = _params(model)
    res = repair(model, BUG, split.pool, strategy="random-label", seed=0, train=train,
                 validation=split.validation, test=split.test, **KW)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"input model changed: {k}"
    assert res.model is not model
    h = res.history
    assert [r.round for r in h] == [0, 1, 2]
    assert [r.samples_used for r in h] == [0, 200, 400]
    assert res.samples_used == 400 and len(np.unique(res.selected)) == 400
    assert h[-1].label_acc > h[0].label_acc + 0.2
    assert all(r.seconds >= r.train_seconds >= 0 for r in h)
    d = res.to_dict()
    assert d["strategy"] == "random-label" and len(d["history"]) == 3


def test_until_fixed_stops_early_and_default_validation(buggy, split):
    model, train = buggy
    res = repair(model, BUG, split.pool, budget=2000, batch=200, epochs_per_round=2, lr=5e-3,
                 strategy="random-label", seed=0, train=train, target=0.3, progress=False)
    assert res.fixed and res.samples_to_fix == res.samples_used < 2000
    assert res.history[-1].label_acc >= 0.3


def test_resume_after_interruption_repeats_nothing(buggy, split, tmp_path):
    model, train = buggy
    kw = dict(strategy="auto", seed=1, train=train, validation=split.validation, **KW)
    full = repair(model, BUG, split.pool, **kw)
    calls = []

    def boom(rec):
        calls.append(rec.round)
        if rec.round == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        repair(model, BUG, split.pool, checkpoint_dir=tmp_path, on_round=boom, **kw)
    resumed = repair(model, BUG, split.pool, checkpoint_dir=tmp_path, on_round=boom, **kw)
    assert calls == [1, 2]  # round 1 was not run again
    np.testing.assert_array_equal(resumed.selected, full.selected)
    assert [r.label_acc for r in resumed.history] == pytest.approx(
        [r.label_acc for r in full.history], abs=1e-6)
    with pytest.raises(InputError, match="other arguments"):
        repair(model, BUG, split.pool, checkpoint_dir=tmp_path, **{**kw, "seed": 2})


def test_invalid_arguments(buggy, split):
    model, _ = buggy
    with pytest.raises(RegistryError):
        repair(model, BUG, split.pool, strategy="magic")
    with pytest.raises(InputError, match="kind"):
        repair(model, object(), split.pool)
    with pytest.raises(InputError, match="label"):
        repair(model, Bug(9, "underfit", 0, 0, "", 0), split.pool)
    with pytest.raises(InputError, match="budget"):
        repair(model, BUG, split.pool, budget=0)
