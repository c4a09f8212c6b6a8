"""The detector object protocol: factory, parameters, persistence, calibration split,
evaluation and model-state preservation."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from deepscope import detect
from deepscope.detect import (
    AmIDetector,
    AttributeSet,
    DetectionReport,
    DetectionResult,
    Detector,
    FeatureSqueezingDetector,
    JointDetector,
    hold_out,
)
from deepscope.errors import InputError, RegistryError
from deepscope.models import execution

GRID = {"alphas": (0.5, 2.0), "epsilons": (1.0,), "n_pairs": 8, "progress": False}
DATA = Path(__file__).parent / "data"


def test_joint_fit_holds_out_calibration_with_an_attribute_set(cnn, faces):
    # the bug: without x_calib, JointDetector sliced tensor boxes but not an AttributeSet,
    # so the AmI member got regions for every input and fewer images, and raised
    x, boxes, groups = faces
    attrs = AttributeSet(boxes=boxes, names=("left", "right"))
    joint = JointDetector([AmIDetector(cnn, **GRID), FeatureSqueezingDetector(cnn)],
                          target_fpr=0.125, progress=False).fit(x, attrs, groups=groups)
    ref = JointDetector([AmIDetector(cnn, **GRID), FeatureSqueezingDetector(cnn)],
                        target_fpr=0.125, progress=False).fit(x, boxes, groups=groups)
    assert joint.detectors[0].witnesses_.attributes == ("left", "right")
    got, want = joint.detectors[0].witnesses_, ref.detectors[0].witnesses_
    assert all(list(got.channels[layer].values()) == list(want.channels[layer].values())
               for layer in got.layers)
    assert torch.equal(joint.score(x), ref.score(x))


def test_hold_out_slices_everything_aligned_alike(faces):
    x, boxes, groups = faces
    split = hold_out(x, 0.25, 3, boxes=AttributeSet(boxes=boxes), groups=groups)
    fit_idx, cal_idx = detect.split_calibration(len(x), 0.25, 3)
    assert len(split.x_calib) == 6 and len(split.x_fit) == 18
    assert torch.equal(split.x_fit, x[fit_idx]) and torch.equal(split.x_calib, x[cal_idx])
    assert torch.equal(split.boxes.boxes, boxes[fit_idx])
    assert torch.equal(split.groups, groups[fit_idx])
    with pytest.raises(InputError, match="calib_fraction"):
        hold_out(x, 1.5, 0)


def test_get_builds_registered_detectors_and_rejects_unknowns(cnn):
    assert set(detect.names()) == {"ami", "squeeze", "joint", "lid", "mahalanobis", "margin",
                                   "art-binary"}
    fs = detect.get("squeeze", cnn, target_fpr=0.2, bit_depth=4)
    assert isinstance(fs, FeatureSqueezingDetector) and fs.bit_depth == 4
    with pytest.raises(RegistryError,
                       match="ami, art-binary, joint, lid, mahalanobis, margin, squeeze"):
        detect.get("magic", cnn)
    with pytest.raises(InputError, match=r"unknown parameter.*valid: target_fpr"):
        detect.get("squeeze", cnn, n_pairs=3)
    joint = detect.get("joint", cnn, target_fpr=0.2, seed=4, n_pairs=5, bit_depth=3,
                       attribute_names=("a", "b"), progress=False)
    ami, sq = joint.detectors
    assert (ami.n_pairs, ami.seed, ami.target_fpr, ami.attribute_names) == (5, 4, 0.2, ("a", "b"))
    assert (sq.bit_depth, sq.target_fpr, joint.seed) == (3, 0.2, 4)
    assert [type(d) for d in detect.get("joint", cnn, members="squeeze").detectors] == [
        FeatureSqueezingDetector]
    with pytest.raises(InputError, match="no member"):
        detect.get("joint", cnn, members=("squeeze",), n_pairs=3)


def test_get_params_introspects_the_constructor(cnn):
    ami = AmIDetector(cnn, target_fpr=0.2, n_pairs=7, alphas=(1.0,), progress=False)
    params = ami.get_params()
    assert "model" not in params and len(params) == len(AmIDetector.param_names())
    assert params["n_pairs"] == 7 and params["alphas"] == (1.0,) and params["target_fpr"] == 0.2
    again = AmIDetector(cnn, **params)
    assert again.get_params() == params
    with pytest.raises(InputError, match="weaken must be True or False"):
        AmIDetector(cnn, weaken="yes")
    with pytest.raises(InputError, match="target_fpr"):
        FeatureSqueezingDetector(cnn, target_fpr=1.0)


def test_saved_parameters_come_back(cnn, faces, tmp_path):
    x, boxes, groups = faces
    ami = AmIDetector(cnn, top_k=3, region_pad=0, attribute_names=("l", "r"), **GRID)
    ami.fit(x, boxes, groups=groups)
    back = Detector.load(ami.save(tmp_path / "ami.npz"), cnn, progress=False)
    assert back.get_params() == ami.get_params()
    assert torch.equal(back.score(x), ami.score(x))


def test_a_file_written_by_the_previous_version_still_loads(cnn, faces):
    # tests/detect/data/joint_v1.npz was written by the pre-redesign code from this fit
    x, boxes, groups = faces
    joint = JointDetector([AmIDetector(cnn, **GRID), FeatureSqueezingDetector(cnn)],
                          target_fpr=0.125, progress=False)
    joint.fit(x[:16], boxes[:16], groups=groups[:16], x_calib=x[16:])
    with pytest.warns(UserWarning, match="without a weights fingerprint"):
        old = Detector.load(DATA / "joint_v1.npz", cnn, progress=False)
    assert isinstance(old, JointDetector) and old.threshold_ == joint.threshold_
    # the file was written on another CPU: float32 kernels may differ in the last digits
    torch.testing.assert_close(old.score(x), joint.score(x), rtol=0, atol=1e-3)
    assert old.get_params().keys() == joint.get_params().keys()


def test_detection_result_roundtrips(cnn, faces, tmp_path):
    x, boxes, groups = faces
    ami = AmIDetector(cnn, **GRID).fit(x, boxes, groups=groups)
    res = ami.run(x[:5])
    back = DetectionResult.load(res.save(tmp_path / "res.npz"))
    assert back.to_dict() == res.to_dict()
    with pytest.raises(InputError, match="exists"):
        res.save(tmp_path / "res.npz")


def test_evaluate_counts_successful_attacks_and_correct_benign_inputs(cnn, faces, tmp_path):
    x, _, _ = faces
    fs = FeatureSqueezingDetector(cnn, target_fpr=0.25, progress=False).fit(x)
    pred = execution.predict_logits(cnn, x).argmax(1)
    y = pred.clone()
    y[:4] = (pred[:4] + 1) % 4  # four benign inputs misclassified: not FP opportunities
    success = torch.zeros(len(x), dtype=torch.bool)
    success[[1, 5, 9]] = True
    adv = {"A": SimpleNamespace(x_adv=x, success=success),
           "none": SimpleNamespace(x_adv=x, success=torch.zeros(len(x), dtype=torch.bool))}
    rep = detect.evaluate({"FS": fs}, x, y, adversarial=adv)
    flags = fs.detect(x)
    assert rep.n_correct == len(x) - 4
    assert rep.counts["FS"]["fp"] == (int(flags[4:].sum()), len(x) - 4)
    assert rep.counts["FS"]["A"] == (int(flags[[1, 5, 9]].sum()), 3)
    assert rep.counts["FS"]["none"] is None and rep.rate("FS", "none") is None
    assert rep.attack_success == {"A": (3, len(x)), "none": (0, len(x))}
    back = DetectionReport.load(rep.save(tmp_path / "rep.npz"))
    assert back == rep and back.to_dict()["rates"]["FS"]["A"] == rep.rate("FS", "A")


def _mixed_state(model: torch.nn.Module) -> list:
    model.train()
    model.block1.eval()  # a frozen BatchNorm block
    model.head.weight.requires_grad_(False)
    return [(m.training) for m in model.modules()] + [p.requires_grad
                                                      for p in model.parameters()]


@pytest.mark.parametrize("make", [
    lambda m: AmIDetector(m, **GRID),
    lambda m: FeatureSqueezingDetector(m, progress=False),
    lambda m: JointDetector([AmIDetector(m, **GRID), FeatureSqueezingDetector(m)],
                            progress=False),
])
def test_fit_and_score_leave_a_mixed_model_state_alone(cnn, faces, make):
    x, boxes, groups = faces
    before = _mixed_state(cnn)
    det = make(cnn)
    det.fit(x, boxes, groups=groups) if det.takes_boxes else det.fit(x)
    det.run(x[:3])
    after = [(m.training) for m in cnn.modules()] + [p.requires_grad for p in cnn.parameters()]
    assert after == before
