"""ART's BinaryActivationDetector behind the Detector protocol, on small synthetic data."""

from __future__ import annotations

import pytest
import torch

from deepscope import detect
from deepscope.detect import ARTBinaryActivationDetector, Detector
from deepscope.errors import InputError, NotFittedError
from tests.detect.test_peers import feature_model, plane_data


def _fitted(seed: int = 0, **kw) -> tuple[ARTBinaryActivationDetector, torch.Tensor,
                                          torch.Tensor]:
    benign, adv = plane_data(300)
    det = detect.get("art-binary", feature_model(6, 2), target_fpr=0.1, layer="feat",
                     progress=False, seed=seed, epochs=60, lr=1e-2, **kw)
    det.fit(benign[:200], x_adv=adv[:100], x_calib=benign[200:250])
    return det, benign, adv


def test_art_binary_learns_to_separate_off_manifold_activations():
    det, benign, adv = _fitted()
    assert isinstance(det, ARTBinaryActivationDetector)
    assert det.detect(benign[200:250]).float().mean() <= 0.1  # calibrated at the target
    assert det.detect(adv[200:]).float().mean() >= 0.9        # unseen adversarial
    assert det.detect(benign[250:]).float().mean() <= 0.3     # unseen benign


def test_art_binary_score_is_the_art_detectors_logit_gap():
    det, benign, _ = _fitted()
    report, art_flags = det._bad.detect(benign[:20].numpy())
    z = torch.as_tensor(report["predictions"])
    assert torch.allclose(det.score(benign[:20]), (z[:, 1] - z[:, 0]).float(), atol=1e-6)
    # ART's own decision is the threshold 0 of that score
    assert (det.score(benign[:20]) > 0).tolist() == art_flags.tolist()


def test_art_binary_is_seeded_and_roundtrips(tmp_path):
    det, _, adv = _fitted(seed=3)
    again, _, _ = _fitted(seed=3)
    assert torch.equal(det.score(adv[:50]), again.score(adv[:50]))
    assert det.threshold_ == again.threshold_
    back = Detector.load(det.save(tmp_path / "ab.npz"), det.model, progress=False)
    assert type(back) is ARTBinaryActivationDetector and back.get_params() == det.get_params()
    assert torch.allclose(back.score(adv[:50]), det.score(adv[:50]), atol=1e-6)
    assert back.threshold_ == det.threshold_


def test_art_binary_leaves_no_hook_and_the_model_state_alone(cnn, faces):
    x, _, _ = faces
    cnn.train()
    det = detect.get("art-binary", cnn, target_fpr=0.2, progress=False, epochs=2).fit(x)
    det.detect(x)
    assert cnn.training and all(m.training for m in cnn.modules())
    assert all(not m._forward_hooks for m in cnn.modules())
    assert all(p.requires_grad for p in cnn.parameters())
    assert det.layer_ == "flatten"  # the penultimate layer by default


def test_art_binary_without_x_adv_trains_on_fgsm_copies(cnn, faces):
    x, _, _ = faces
    det = ARTBinaryActivationDetector(cnn, target_fpr=0.2, progress=False, epochs=2)
    with pytest.raises(NotFittedError):
        det.detect(x)
    det.fit(x[:18], x_calib=x[18:])
    assert det.detect(x[18:]).float().mean() <= 0.2


def test_art_binary_refuses_bad_parameters(cnn):
    with pytest.raises(InputError):
        detect.get("art-binary", cnn, layer="nope")
    with pytest.raises(InputError):
        detect.get("art-binary", cnn, hidden=0)
