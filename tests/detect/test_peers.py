"""Mahalanobis (Lee et al.), LID (Ma et al.) and the margin baseline on hand-made features.

The hand model's feature layer ``feat`` is the identity on the N×1×1×D pixels, so every
feature, mean, covariance and distance is known exactly.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from deepscope import detect
from deepscope.detect import Detector, LIDDetector, MahalanobisDetector, MarginDetector
from deepscope.detect.lid import lid_mle, minibatches
from deepscope.errors import InputError
from deepscope.testing import identity_classifier

A, B = 0.1, 0.2  # offsets of the hand-made class clouds
MU = torch.tensor([[0.3, 0.4], [0.7, 0.6]], dtype=torch.float64)


def feature_model(d: int = 2, k: int = 2) -> nn.Sequential:
    """``feat`` = identity on the D pixels, then a fixed linear head."""
    feat, head = nn.Linear(d, d, bias=False), nn.Linear(d, k)
    with torch.no_grad():
        feat.weight.copy_(torch.eye(d))
        head.weight.copy_(torch.linspace(-1, 1, k * d).view(k, d))
        head.bias.zero_()
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), feat=feat, head=head)).eval()


def as_images(f: torch.Tensor) -> torch.Tensor:
    return f.float().view(len(f), 1, 1, -1)


def hand_clouds() -> tuple[torch.Tensor, torch.Tensor]:
    """Each class: μ_c ± (A, 0) and μ_c ± (0, B) → means μ_c, tied Σ = diag(A²/2, B²/2)."""
    offsets = torch.tensor([[A, 0], [-A, 0], [0, B], [0, -B]], dtype=torch.float64)
    f = torch.cat([MU[0] + offsets, MU[1] + offsets])
    return f, torch.tensor([0] * 4 + [1] * 4)


def fitted_hand_detector(**kw) -> MahalanobisDetector:
    f, y = hand_clouds()
    adv = as_images(torch.tensor([[0.5, 0.1], [0.5, 0.9], [0.1, 0.9]]))
    det = MahalanobisDetector(feature_model(), target_fpr=0.25, layers=["feat"],
                              progress=False, **{"epsilons": (0.0,), **kw})
    return det.fit(as_images(f), labels=y, x_adv=adv, x_calib=as_images(f))


def test_mahalanobis_gaussians_and_score_equal_the_hand_computation():
    det = fitted_hand_detector()
    classes, means, precision = det.gaussians_[0]
    assert classes.tolist() == [0, 1]
    assert torch.allclose(means, MU, atol=1e-7)
    sigma = torch.diag(torch.tensor([A**2 / 2, B**2 / 2], dtype=torch.float64))
    assert torch.allclose(torch.linalg.inv(precision), sigma, atol=1e-9)
    # a point at μ_0 + (A, 0): distance A² / (A²/2) = 2 to class 0, far from class 1
    q = MU[0] + torch.tensor([A, 0.0], dtype=torch.float64)
    conf = det.confidences(as_images(q[None]), 0.0)
    assert conf.shape == (1, 1)
    assert conf.item() == pytest.approx(-2.0, abs=1e-5)
    # the score is the combiner's log-odds of "adversarial" on that confidence
    assert det.score(as_images(q[None])).item() == pytest.approx(
        float(det.combiner_(conf)), abs=1e-5)


def test_mahalanobis_tied_covariance_equals_numpy_and_scores_match():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(30) % 3
    mu = torch.tensor([[0.2, 0.3, 0.5], [0.5, 0.7, 0.4], [0.8, 0.4, 0.6]])
    f = (mu[y] + 0.05 * torch.randn(30, 3, generator=g)).clamp(0, 1)
    det = MahalanobisDetector(feature_model(3, 3), layers=["feat"], epsilons=(0.0,),
                              progress=False)
    det.fit(as_images(f), labels=y, x_adv=torch.rand(5, 1, 1, 3, generator=g),
            x_calib=as_images(f))
    fn, yn = as_images(f).flatten(1).double().numpy(), y.numpy()
    means = np.stack([fn[yn == c].mean(0) for c in range(3)])
    cov = np.cov((fn - means[yn]).T, bias=True)
    _, got_means, precision = det.gaussians_[0]
    assert np.allclose(got_means.numpy(), means)
    assert np.allclose(np.linalg.inv(precision.numpy()), cov, atol=1e-10)
    q = torch.rand(4, 3, generator=g)
    qn = as_images(q).flatten(1).double().numpy()
    inv = np.linalg.inv(cov)
    d = np.stack([np.einsum("nd,de,ne->n", qn - m, inv, qn - m) for m in means], 1)
    assert np.allclose(det.confidences(as_images(q), 0.0)[:, 0].numpy(), -d.min(1), atol=1e-4)


def test_mahalanobis_preprocessing_moves_against_the_distance_gradient_by_eps():
    det = fitted_hand_detector()
    eps = 0.01
    # closest class 0; ∇ d = 2 Σ⁻¹ (x − μ_0) has the signs of (x − μ_0) = (+, −)
    q = as_images((MU[0] + torch.tensor([0.05, -0.03], dtype=torch.float64))[None])
    (moved,) = det.preprocess(q, eps)
    assert torch.allclose(moved - q, torch.tensor([-eps, eps]).view(1, 1, 1, 2), atol=1e-7)
    # clipped to the valid range: a pixel at 0 that should move down stays at 0
    edge = as_images(torch.tensor([[0.0, 0.45]]))  # closest class 0, x0 < μ_0 → moves +eps
    (moved_edge,) = det.preprocess(edge, eps)
    assert moved_edge.flatten().tolist() == pytest.approx([eps, 0.45 - eps], abs=1e-7)
    low = as_images(torch.tensor([[0.35, 0.0]]))  # x1 < μ_0 → +eps; x0 > μ_0 → −eps
    (moved_low,) = det.preprocess(low, eps)
    assert moved_low.flatten().tolist() == pytest.approx([0.35 - eps, eps], abs=1e-7)
    # the confidence after pre-processing is the hand computation on the moved point
    fm = moved.flatten(1).double()
    hand = -((fm - MU[0]) ** 2 / torch.tensor([A**2 / 2, B**2 / 2])).sum()
    assert det.confidences(q, eps).item() == pytest.approx(float(hand), abs=1e-4)
    # confidences after pre-processing are higher (the point moved towards its class)
    assert det.confidences(q, eps).item() > det.confidences(q, 0.0).item()


def plane_data(n: int, d: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Benign: a 2-D sheet in D dims (dims ≥ 2 near 0.5); adversarial: shifted off it."""
    g = torch.Generator().manual_seed(seed)
    f = torch.full((n, d), 0.5)
    f[:, :2] = 0.2 + 0.6 * torch.rand(n, 2, generator=g)
    f[:, 2:] += 0.01 * torch.randn(n, d - 2, generator=g)
    off = f.clone()
    off[:, 2:] += 0.15 * torch.sign(torch.randn(n, d - 2, generator=g))
    return as_images(f.clamp(0, 1)), as_images(off.clamp(0, 1))


@pytest.mark.parametrize("method", ["mahalanobis", "lid"])
def test_combiner_learns_to_separate_off_manifold_inputs(method):
    benign, adv = plane_data(300)
    params = {"epsilons": (0.0, 0.001)} if method == "mahalanobis" else {
        "k": 10, "minibatch": 50, "noise_std": 0.005}
    det = detect.get(method, feature_model(6, 2), target_fpr=0.1, layers=["feat"],
                     progress=False, **params)
    det.fit(benign[:200], x_adv=adv[:100], x_calib=benign[200:250])
    assert det.detect(benign[200:250]).float().mean() <= 0.1  # calibration set
    assert det.detect(adv[200:]).float().mean() >= 0.9        # unseen adversarial
    assert det.detect(benign[250:]).float().mean() <= 0.3     # unseen benign


def test_lid_equals_the_closed_form_on_hand_made_distances():
    k = 5
    query = torch.zeros(1, 2)
    ref = torch.tensor([[float(i), 0.0] for i in range(1, k + 1)] + [[50.0, 0], [0, 80.0]])
    expected = -1.0 / np.mean(np.log(np.arange(1, k + 1) / k))
    assert lid_mle(query, ref, k).item() == pytest.approx(expected)
    # only the k nearest count; the query itself (distance 0) is skipped
    with_self = torch.cat([query, ref, torch.tensor([[1000.0, 0.0]])])
    assert lid_mle(query, with_self, k).item() == pytest.approx(expected)
    k3 = -1.0 / np.mean(np.log(np.arange(1, 4) / 3))
    assert lid_mle(query, ref, 3).item() == pytest.approx(k3)
    with pytest.raises(InputError, match="reference points"):
        lid_mle(query, ref[:3], k)


def test_lid_is_about_one_on_a_line_and_two_on_a_plane():
    g = torch.Generator().manual_seed(0)
    line = torch.zeros(3000, 3)
    line[:, 0] = torch.rand(3000, generator=g)
    plane = torch.zeros(3000, 3)
    plane[:, :2] = torch.rand(3000, 2, generator=g)
    q_line = torch.zeros(200, 3)
    q_line[:, 0] = 0.25 + 0.5 * torch.rand(200, generator=g)
    q_plane = torch.zeros(200, 3)
    q_plane[:, :2] = 0.25 + 0.5 * torch.rand(200, 2, generator=g)
    assert lid_mle(q_line, line, 20).mean().item() == pytest.approx(1.0, abs=0.15)
    assert lid_mle(q_plane, plane, 20).mean().item() == pytest.approx(2.0, abs=0.3)


def test_lid_minibatches_and_k_are_respected():
    assert [c.tolist() for c in minibatches(5, 2)] == [[0, 1], [2, 3], [3, 4]]
    assert all(len(c) == 25 for c in minibatches(42, 25))
    assert minibatches(7, 25)[0].tolist() == list(range(7))
    benign, adv = plane_data(60)
    det = LIDDetector(feature_model(6, 2), layers=["feat"], k=5, minibatch=25,
                      calib_fraction=0.3, progress=False)
    det.fit(benign, x_adv=adv[:20])
    assert det.minibatch_ == 25 and det.reference_[0].shape == (25, 6)
    z = det.lids(adv[40:44])
    hand = lid_mle(adv[40:44].flatten(1), det.reference_[0], 5)
    assert torch.allclose(z[:, 0], hand)
    with pytest.raises(InputError, match="exceed k"):
        LIDDetector(feature_model(6, 2), k=20, minibatch=20)
    with pytest.raises(InputError, match="more than k"):
        LIDDetector(feature_model(6, 2), k=20, progress=False).fit(benign[:20])


def test_margin_score_is_minus_the_top2_logit_gap():
    model = identity_classifier(3)
    x = torch.tensor([[0.9, 0.2, 0.5], [0.1, 0.4, 0.45], [0.3, 0.3, 0.0]]).view(3, 1, 1, 3)
    det = MarginDetector(model, target_fpr=0.34, progress=False).fit(x)
    assert det.score(x).tolist() == pytest.approx([-0.4, -0.05, 0.0], abs=1e-6)
    assert det.detect(x).tolist() == [False, False, True]


@pytest.mark.parametrize("method,params", [
    ("mahalanobis", {"epsilons": (0.0, 0.002)}),
    ("lid", {"k": 4, "minibatch": 8}),
    ("margin", {}),
])
def test_peers_calibrate_and_roundtrip(cnn, faces, tmp_path, method, params):
    x, _, _ = faces
    det = detect.get(method, cnn, target_fpr=0.2, progress=False, **params)
    assert det.fit(x[:18], x_calib=x[18:]) is det
    flags = det.detect(x[18:])
    assert flags.dtype == torch.bool and flags.float().mean() <= 0.2
    assert det.get_params()["target_fpr"] == 0.2
    back = Detector.load(det.save(tmp_path / f"{method}.npz"), cnn, progress=False)
    assert type(back) is type(det) and back.get_params() == det.get_params()
    assert torch.equal(back.score(x), det.score(x))
    assert back.threshold_ == det.threshold_


def test_without_x_adv_the_combiner_trains_on_fgsm_copies():
    from deepscope.detect._features import fgsm_examples

    model = feature_model(6, 2)
    benign, _ = plane_data(80)
    adv = fgsm_examples(model, benign, 0.05, batch_size=16)
    step = (adv - benign).abs()
    clipped = (adv == 0) | (adv == 1)
    assert torch.allclose(step[~clipped], torch.tensor(0.05), atol=1e-6)
    # the step raises the loss of the predicted label: the margin shrinks
    z0, z1 = model(benign), model(adv)
    top = z0.argmax(1)
    assert bool((z1.gather(1, top[:, None]) - z1.min(1, keepdim=True).values
                 < z0.gather(1, top[:, None]) - z0.min(1, keepdim=True).values).all())
    for method in ("mahalanobis", "lid"):
        params = {"epsilons": (0.0,)} if method == "mahalanobis" else {"k": 5, "minibatch": 20}
        det = detect.get(method, model, target_fpr=0.1, layers=["feat"], progress=False,
                         **params).fit(benign)
        assert det.combiner_.w.shape == (1,) and torch.isfinite(det.combiner_.w).all()
        assert det.detect(benign).float().mean() <= 0.25


def test_default_layers_are_the_block_outputs_plus_the_penultimate_layer(cnn):
    from deepscope.detect._features import default_feature_layers, last_layer
    from deepscope.models import zoo

    face = zoo.build("face-cnn-26k", num_classes=40, seed=0)
    x = torch.rand(1, 1, 112, 92)
    assert default_feature_layers(face, x) == ["block1", "block2", "block3", "flatten"]
    assert last_layer(face) == "head"
    assert default_feature_layers(cnn, torch.rand(1, 1, 24, 20)) == ["block1", "block2",
                                                                     "flatten"]
