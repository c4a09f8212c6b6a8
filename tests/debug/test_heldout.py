"""``debug.heldout_split``: MODE data the model did not train on (issue 11, item 1)."""

from __future__ import annotations

import pytest

from deepscope import debug
from deepscope.data import mode_split
from deepscope.errors import InputError
from deepscope.models import TrainingData, sample_ids, training_split
from deepscope.testing.data import blobs

ALL = blobs(600, 4, (1, 8, 8), noise=0.3, seed=4, split="all")


def load(split: str):
    """Laid out like ``data.load``: "all" = "train" followed by "test"."""
    return {"all": ALL, "train": ALL.subset(slice(0, 480), split="train"),
            "test": ALL.subset(slice(480, 600), split="test")}[split]


def _seen(rec_split) -> set[str]:
    return set(sample_ids(rec_split.train))


def test_mode_record_gives_the_same_split_and_refuses_other_seeds():
    trained = training_split(load, dataset="blobs", protocol="mode", seed=3, limit=400)
    held = debug.heldout_split(trained.record, load, dataset="blobs", purpose="repair")
    assert held.protocol == "mode" and held.seed == 3 and held.warning is None
    seen = _seen(trained)
    assert set(sample_ids(held.train)) == seen
    for part in (held.test, held.validation, held.pool):
        assert not set(sample_ids(part)) & seen
    assert len(held.pool) == 200 and held.to_dict()["trained_on"] == trained.record.to_dict()
    assert debug.heldout_split(trained.record, load, dataset="blobs", seed=3).seed == 3
    with pytest.raises(InputError, match="pass --seed 3"):
        debug.heldout_split(trained.record, load, dataset="blobs", seed=0)
    with pytest.raises(InputError, match="--dataset blobs"):
        debug.heldout_split(trained.record, load, dataset="mnist")
    capped = debug.heldout_split(trained.record, load, dataset="blobs", limit=20)
    assert len(capped.test) == 20 and len(capped.train) == 20


def test_official_record_diagnoses_on_the_test_split_and_refuses_repair():
    trained = training_split(load, dataset="blobs", protocol="official", seed=0, limit=200,
                             val_fraction=0.2)
    held = debug.heldout_split(trained.record, load, dataset="blobs")
    assert held.protocol == "official" and held.pool is None and held.warning is None
    assert set(sample_ids(held.train)) == _seen(trained)
    assert set(sample_ids(held.test)) == set(sample_ids(load("test")))
    assert held.to_dict()["test"]["n"] == 120 and held.to_dict()["verified_unseen"]
    with pytest.raises(InputError, match="--split mode --seed 0"):
        debug.heldout_split(trained.record, load, dataset="blobs", purpose="repair")


def test_no_record_keeps_the_old_split_with_a_warning():
    held = debug.heldout_split(None, load, dataset="blobs", seed=1)
    old = mode_split(ALL, seed=1)
    assert set(sample_ids(held.test)) == set(sample_ids(old.test))
    assert held.protocol == "mode-unverified" and "optimistic" in held.warning
    assert "\n" not in held.warning and held.to_dict()["verified_unseen"] is False


def test_changed_data_is_refused():
    trained = training_split(load, dataset="blobs", protocol="mode", seed=0)
    other = blobs(600, 4, (1, 8, 8), noise=0.3, seed=5, split="all")
    with pytest.raises(InputError, match="no longer matches"):
        debug.heldout_split(trained.record, lambda s: other, dataset="blobs")
    custom = TrainingData("blobs", "custom", "mine", 0, None, 10, "0" * 64)
    held = debug.heldout_split(custom, load, dataset="blobs")
    assert held.warning and "custom data" in held.warning
