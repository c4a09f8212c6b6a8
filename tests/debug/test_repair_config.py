"""RepairConfig, the repair result's persistence and a corrupt resumable state."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from deepscope.debug import Bug, RepairConfig, RepairResult, repair
from deepscope.debug.repair import STATE_FILE
from deepscope.debug.repair_seeds import round_seeds
from deepscope.errors import DeepscopeError, InputError

BUG = Bug(1, "underfit", 0.0, 0.0, "test", 0.0)
SETTINGS = dict(batch=200, epochs_per_round=1, lr=1e-3, until_fixed=False,
                strategy="random-label", seed=0)


def test_config_and_keywords_give_the_same_repair(buggy, split):
    model, train = buggy
    a = repair(model, BUG, split.pool, 400, train=train, validation=split.validation,
               progress=False, **SETTINGS)
    b = repair(model, BUG, split.pool, train=train, validation=split.validation,
               progress=False, config=RepairConfig(budget=400, **SETTINGS))
    np.testing.assert_array_equal(a.selected, b.selected)
    assert [r.label_acc for r in a.history] == [r.label_acc for r in b.history]


def test_config_is_validated_once_and_frozen():
    with pytest.raises(InputError, match="selected_share"):
        RepairConfig(selected_share=0)
    with pytest.raises(InputError, match="until_fixed"):
        RepairConfig(until_fixed=1)
    with pytest.raises(InputError, match=r"clusters|takes no parameter"):
        RepairConfig(strategy="random", strategy_params={"clusters": 3})
    cfg = RepairConfig(budget=4000, batch=2000)
    assert cfg.rounds == 2 and cfg.round_sizes(0) == (2000, 500)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


def test_unknown_or_doubled_settings_are_refused(buggy, split):
    model, _ = buggy
    with pytest.raises(InputError, match="unknown setting"):
        repair(model, BUG, split.pool, strategyy="auto")
    with pytest.raises(InputError, match="not both"):
        repair(model, BUG, split.pool, config=RepairConfig(), seed=1)


def test_round_streams_are_independent_and_reproducible():
    a, b = round_seeds(0, 1), round_seeds(0, 1)
    assert a["fit"] == b["fit"] and a["fit"] != round_seeds(0, 2)["fit"]
    draws = [round_seeds(0, 1)[k].integers(2**31) for k in ("select", "fill", "replay")]
    assert len(set(draws)) == 3


def test_result_save_load_round_trip(buggy, split, tmp_path):
    model, train = buggy
    res = repair(model, BUG, split.pool, 200, train=train, validation=split.validation,
                 progress=False, **SETTINGS)
    path = res.save(tmp_path / "r.npz")
    with pytest.raises(InputError, match="exists"):
        res.save(path)
    back = RepairResult.load(path, model)
    assert back.to_dict() == res.to_dict()
    np.testing.assert_array_equal(back.selected, res.selected)
    for k, v in res.model.state_dict().items():
        assert torch.equal(back.model.state_dict()[k], v)
    assert back.model is not model and not back.model.training


def test_corrupt_state_file_is_a_one_line_error(buggy, split, tmp_path):
    model, train = buggy
    (tmp_path / STATE_FILE).write_bytes(b"not a state file")
    with pytest.raises(DeepscopeError) as info:
        repair(model, BUG, split.pool, 200, train=train, validation=split.validation,
               checkpoint_dir=tmp_path, progress=False, **SETTINGS)
    assert "\n" not in str(info.value) and STATE_FILE in str(info.value)
