"""Training-data provenance in checkpoints and the weights fingerprint (issue 11, items 1, 4)."""

from __future__ import annotations

import pytest
import torch

from deepscope.errors import CheckpointError, InputError
from deepscope.models import (
    TrainingData,
    data_fingerprint,
    load_checkpoint,
    sample_ids,
    save_checkpoint,
    training_split,
    weights_fingerprint,
    zoo,
)
from deepscope.testing.data import blobs

ALL = blobs(400, 4, (1, 8, 8), noise=0.3, seed=3, split="all")


def load(split: str):
    """A dataset laid out like ``data.load``: "all" = "train" followed by "test"."""
    return {"all": ALL, "train": ALL.subset(slice(0, 300), split="train"),
            "test": ALL.subset(slice(300, 400), split="test")}[split]


def test_sample_ids_identify_content_and_the_fingerprint_ignores_order():
    ids = sample_ids(ALL)
    assert ids.shape == (400,) and len(set(ids)) == 400
    shuffled = ALL.subset(torch.randperm(400, generator=torch.Generator().manual_seed(0)))
    assert data_fingerprint(shuffled) == data_fingerprint(ALL)
    assert data_fingerprint(ALL.subset(slice(1, None))) != data_fingerprint(ALL)
    relabelled = ALL.subset(slice(None))
    relabelled.y[0] = (relabelled.y[0] + 1) % 4
    assert sample_ids(relabelled)[0] != ids[0] and (sample_ids(relabelled)[1:] == ids[1:]).all()


@pytest.mark.parametrize("protocol", ["official", "mode"])
def test_training_split_records_what_was_fitted_on_and_keeps_test_unseen(protocol):
    parts = training_split(load, dataset="blobs", protocol=protocol, seed=2, limit=None,
                           val_fraction=0.1)
    rec = parts.record
    assert rec.protocol == protocol and rec.seed == 2 and rec.n_samples == len(parts.train)
    assert rec.fingerprint == data_fingerprint(parts.train)
    assert not set(sample_ids(parts.train)) & set(sample_ids(parts.test))
    assert not set(sample_ids(parts.validation)) & set(sample_ids(parts.train))
    if protocol == "official":
        assert rec.split == "train" and rec.validation == "train-split" and len(parts.test) == 100
        assert rec.val_fraction == 0.1 and parts.mode is None
    else:
        assert rec.split == "mode-train" and rec.validation == "mode-validation"
        assert len(parts.train) == 120 and parts.mode is not None
        assert not set(sample_ids(parts.train)) & set(sample_ids(parts.mode.pool))
    again = training_split(load, dataset="blobs", protocol=protocol, seed=2, val_fraction=0.1)
    assert again.record == rec
    other = training_split(load, dataset="blobs", protocol=protocol, seed=3, val_fraction=0.1)
    assert other.record.fingerprint != rec.fingerprint


def test_provenance_round_trips_through_a_weights_only_checkpoint(tmp_path):
    rec = training_split(load, dataset="blobs", protocol="mode", seed=1, limit=200).record
    path = tmp_path / "m.pt"
    model = zoo.build("mlp-100k", seed=0)
    save_checkpoint(path, model, arch="mlp-100k", classes=[str(i) for i in range(10)],
                    metadata={"training_data": rec, "note": "x"})
    raw = torch.load(path, weights_only=True)
    assert raw["metadata"]["training_data"] == rec.to_dict()
    ckpt = load_checkpoint(path)
    assert ckpt.training_data == rec and rec.limit == 200
    assert TrainingData.from_dict(rec.to_dict()) == rec
    assert "MODE train part of blobs (seed 1, --limit 200" in rec.describe()

    old = save_checkpoint(tmp_path / "old.pt", model, arch="mlp-100k",
                          classes=[str(i) for i in range(10)], metadata={"note": "x"})
    assert load_checkpoint(old).training_data is None
    bad = save_checkpoint(tmp_path / "bad.pt", model, arch="mlp-100k",
                          classes=[str(i) for i in range(10)],
                          metadata={"training_data": {"dataset": "mnist"}})
    with pytest.raises(CheckpointError, match="training_data"):
        _ = load_checkpoint(bad).training_data
    with pytest.raises(InputError, match="protocol"):
        TrainingData("mnist", "guess", "train", 0, None, 1, "f")


def test_weights_fingerprint_tells_weights_apart_and_touches_nothing():
    a, b = zoo.build("cnn-8k", seed=0), zoo.build("cnn-8k", seed=1)
    assert weights_fingerprint(a) != weights_fingerprint(b)
    assert weights_fingerprint(a) == weights_fingerprint(zoo.build("cnn-8k", seed=0))
    a.train()
    a.requires_grad_(False)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    fp = weights_fingerprint(a)
    assert a.training and not any(p.requires_grad for p in a.parameters())
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())
    buffers = dict(a.named_buffers())
    name = next(n for n in buffers if n.endswith("running_mean"))
    buffers[name].add_(1.0)  # a buffer (BatchNorm statistics) is part of the weights
    assert weights_fingerprint(a) != fp
    assert weights_fingerprint(zoo.build("cnn-8k", seed=0).double()) != weights_fingerprint(
        zoo.build("cnn-8k", seed=0))
    assert len(fp) == 64 and int(fp, 16) >= 0
