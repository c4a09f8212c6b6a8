from __future__ import annotations

import numpy as np
import pytest
import torch

from deepscope.detect import (
    AmIDetector,
    Detector,
    FeatureSqueezingDetector,
    JointDetector,
    median_filter,
    quantile_threshold,
    reduce_bit_depth,
)
from deepscope.errors import InputError, NotFittedError

GRID = {"alphas": (0.5, 2.0), "epsilons": (1.0,), "n_pairs": 8, "progress": False}


def test_quantile_threshold_allows_floor_fpr_times_n_above():
    s = torch.arange(20.0)
    t = quantile_threshold(s, 0.1)
    assert (s > t).sum() == 2
    assert (s > quantile_threshold(s, 0.01)).sum() == 0


def test_squeezers_match_references():
    scipy_nd = pytest.importorskip("scipy.ndimage")
    x = torch.rand(2, 1, 9, 7)
    for size in (2, 3):
        ref = np.stack([scipy_nd.median_filter(x[i, 0].numpy(), size=size, mode="nearest")
                        for i in range(2)])
        assert np.allclose(median_filter(x, size)[:, 0].numpy(), ref)
    q = reduce_bit_depth(x, 2)
    assert torch.allclose(q * 3, torch.round(q * 3)) and len(torch.unique(q)) <= 4


def test_feature_squeezing_fit_detect_save_load(cnn, faces, tmp_path):
    x, _, _ = faces
    det = FeatureSqueezingDetector(cnn, target_fpr=0.125)
    with pytest.raises(NotFittedError):
        det.detect(x)
    det.fit(x)
    flags = det.detect(x)
    assert flags.dtype == torch.bool and flags.shape == (len(x),)
    assert flags.float().mean() <= 0.125
    res = det.run(x[:3])
    assert res.to_dict()["n"] == 3 and res.detector == "squeeze"
    path = det.save(tmp_path / "fs.npz")
    with pytest.raises(InputError, match="exists"):
        det.save(path)
    back = Detector.load(path, cnn)
    assert isinstance(back, FeatureSqueezingDetector)
    assert torch.allclose(back.score(x), det.score(x))
    with pytest.raises(InputError, match="another model"):
        Detector.load(path, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(480, 4)))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        det.detect(x * 3)
    with pytest.raises(InputError, match="shape"):
        det.detect(torch.rand(2, 1, 10, 10))


def test_ami_fit_calibrates_and_roundtrips(cnn, faces, tmp_path):
    x, boxes, groups = faces
    det = AmIDetector(cnn, target_fpr=0.1, **GRID)
    with pytest.raises(NotFittedError):
        det.score(x)
    with pytest.raises(InputError, match="boxes"):
        det.fit(x)
    det.fit(x[:16], boxes[:16], groups=groups[:16], x_calib=x[16:])
    assert det.config_.layers and det.config_.alpha in (0.5, 2.0)
    assert len(det.calibration_) == len(det.candidate_configs())
    # the grid's shared-prefix scores are exactly the detector's own scores
    scores = det.score(x[16:])
    assert torch.allclose(torch.sort(scores.double()).values, det.calibration_scores_,
                          atol=1e-5)
    assert det.detect(x[16:]).float().mean() <= 0.1 + 1e-9
    res = det.run(x[:4])
    assert torch.equal(res.flags, res.scores > det.threshold_)
    assert "steered_labels" in res.to_dict()
    path = det.save(tmp_path / "ami.npz")
    back = AmIDetector.load(path, cnn)
    assert back.config_ == det.config_ and back.witnesses_.channels == det.witnesses_.channels
    assert torch.allclose(back.score(x), det.score(x), atol=1e-6)
    with pytest.raises(InputError, match="not a"):
        FeatureSqueezingDetector.load(path, cnn)


def test_ami_is_seeded_and_the_control_keeps_neuron_counts(cnn, faces):
    x, boxes, groups = faces
    a = AmIDetector(cnn, **GRID).fit(x, boxes, groups=groups)
    b = AmIDetector(cnn, **GRID).fit(x, boxes, groups=groups)
    assert a.witnesses_.channels == b.witnesses_.channels and a.threshold_ == b.threshold_
    c = AmIDetector(cnn, random_control=True, **GRID).fit(x, boxes, groups=groups)
    for layer in a.witnesses_.layers:
        assert c.witnesses_.total(layer) == a.witnesses_.total(layer)


def test_benign_level_is_strictly_increasing_and_matches_the_ecdf():
    from deepscope.detect.joint import benign_level

    ref = torch.tensor([0.0, 1.0, 2.0, 4.0], dtype=torch.float64)
    s = torch.tensor([-1.0, 0.0, 0.5, 2.0, 3.0, 4.0, 8.0], dtype=torch.float64)
    lv = benign_level(s, ref)
    assert (lv[1:] > lv[:-1]).all()
    assert torch.allclose(lv[[1, 3, 5]], torch.tensor([0.0, 2 / 3, 1.0], dtype=torch.float64))
    assert lv[0] < 0 and lv[-1] > 1


def test_joint_detector_union_meets_the_target(cnn, faces, tmp_path):
    x, boxes, groups = faces
    joint = JointDetector([AmIDetector(cnn, **GRID), FeatureSqueezingDetector(cnn)],
                          target_fpr=0.125)
    with pytest.raises(InputError, match="boxes"):
        joint.fit(x)
    joint.fit(x[:16], boxes[:16], groups=groups[:16], x_calib=x[16:])
    assert all(d.is_fitted for d in joint.detectors)
    assert joint.detect(x[16:]).float().mean() <= 0.125
    res = joint.run(x)
    levels = res.extra["member_levels"]
    assert levels.shape == (len(x), 2)
    assert torch.allclose(res.scores, levels.amax(1).to(res.scores.dtype))
    back = Detector.load(joint.save(tmp_path / "joint.npz"), cnn)
    assert isinstance(back, JointDetector) and len(back.detectors) == 2
    assert torch.allclose(back.score(x), joint.score(x))
    with pytest.raises(InputError, match="same model"):
        JointDetector([FeatureSqueezingDetector(cnn),
                       FeatureSqueezingDetector(torch.nn.Linear(2, 2))])


@pytest.mark.slow
def test_public_interface_on_real_faces(data_dir):
    from deepscope.data import load
    from deepscope.models import zoo

    faces = load("att-faces", "train", progress=False)
    x, boxes = faces.x[:40], faces.extras["boxes"][:40]
    model = zoo.build("face-cnn-26k", seed=0)
    ami = AmIDetector(model, target_fpr=0.1, **GRID).fit(x, boxes)
    fs = FeatureSqueezingDetector(model, target_fpr=0.1).fit(x)
    joint = JointDetector([AmIDetector(model, **GRID), FeatureSqueezingDetector(model)],
                          target_fpr=0.1).fit(x, boxes)
    for det in (ami, fs, joint):
        out = det.detect(x[:5])
        assert out.dtype == torch.bool and out.shape == (5,)
