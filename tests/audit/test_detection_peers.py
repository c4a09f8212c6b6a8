"""``detection_experiment(peers=...)``: registered box-free detectors beside AmI and feature
squeezing, through the registry (issue 16)."""

from __future__ import annotations

import pytest

from deepscope.audit.detection import DetectionExperiment, detection_experiment
from deepscope.errors import InputError
from deepscope.models import zoo


@pytest.mark.slow
def test_peers_join_the_experiment_and_roundtrip(data_dir, tmp_path):
    exp = detection_experiment(model=zoo.build("face-cnn-26k", seed=0), n_attack=2, n_pairs=4,
                               progress=False, log=lambda m: None,
                               peers=("margin", "mahalanobis", "lid"))
    rates = exp.to_dict()["rates"]
    assert set(rates) == {"AmI", "Feature squeezing", "margin", "mahalanobis", "lid"}
    for row in rates.values():
        assert 0.0 <= row["fp"] <= 1.0
    back = DetectionExperiment.load(exp.save(tmp_path / "exp.npz"))
    assert back.to_dict() == exp.to_dict()


@pytest.mark.parametrize("peers", [("ami",), ("joint",), ("nope",), "margin"])
def test_unknown_or_box_taking_peers_are_refused(peers):
    with pytest.raises(InputError, match="peer"):
        detection_experiment(model=zoo.build("face-cnn-26k", seed=0), peers=peers,
                             progress=False, log=lambda m: None)
