"""``adaptive_terms()`` of the detectors: the differentiable views and penalty an adaptive attack
descends are the detector's own computation (equal values in the forward pass), gradients
reach the input (also through rounding and the Mahalanobis pre-processing, by BPDA), and the
returned object satisfies the attacks' :class:`~deepscope.attacks.DefenseTerms` protocol."""

from __future__ import annotations

import pytest
import torch

from deepscope import attacks
from deepscope.detect import (
    AmIDetector,
    FeatureSqueezingDetector,
    LIDDetector,
    MahalanobisDetector,
    MarginDetector,
    median_filter,
    reduce_bit_depth,
)
from deepscope.errors import NotFittedError


def grad_of(fn, x):
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(xg).sum(), xg)
    return g


def check_protocol(det, kind):
    assert isinstance(det, attacks.AdaptiveTarget)
    terms = det.adaptive_terms()
    assert isinstance(terms, attacks.DefenseTerms)
    assert terms.kind == kind and terms.model is det.model
    return terms


def test_squeeze_views_are_the_squeezed_copies_and_the_penalty_is_the_score(cnn, faces):
    x, _, _ = faces
    det = FeatureSqueezingDetector(cnn, target_fpr=0.1, bit_depth=3, median_size=2,
                                   progress=False).fit(x)
    terms = check_protocol(det, "squeeze")
    with torch.no_grad():
        views = terms.views(x)
        assert len(views) == 3
        assert torch.allclose(views[0], cnn(x))
        assert torch.allclose(views[1], cnn(reduce_bit_depth(x, 3)))
        assert torch.allclose(views[2], cnn(median_filter(x, 2)))
        pen = terms.penalty(x, torch.zeros(len(x), dtype=torch.long), views)
    assert torch.allclose(pen, det.score(x), atol=1e-6)
    assert torch.equal(terms.flags(x), det.detect(x))
    # rounding has a zero gradient; the straight-through estimator lets it through
    assert grad_of(lambda v: cnn(reduce_bit_depth(v, 3)), x).abs().sum() == 0
    assert grad_of(lambda v: terms.views(v)[1], x).abs().sum() > 0
    assert grad_of(lambda v: terms.views(v)[2], x).abs().sum() > 0


def test_ami_views_are_the_original_and_the_steered_logits(cnn, faces):
    x, boxes, groups = faces
    det = AmIDetector(cnn, target_fpr=0.1, alphas=(0.5,), n_pairs=8, progress=False)
    det.fit(x, boxes, groups=groups)
    terms = check_protocol(det, "ami")
    z0, z1 = det.steered_model().logits(x)
    views = terms.views(x)
    assert len(views) == 2 and views[0].requires_grad and views[1].requires_grad
    assert torch.allclose(views[0], z0, atol=1e-6) and torch.allclose(views[1], z1, atol=1e-6)
    assert terms.penalty(x, z0.argmax(1), views) is None
    assert grad_of(lambda v: terms.views(v)[1], x).abs().sum() > 0
    assert torch.equal(terms.flags(x), det.detect(x))


def test_mahalanobis_penalty_is_the_score_at_the_closest_class(cnn, faces):
    x, _, _ = faces
    det = MahalanobisDetector(cnn, target_fpr=0.1, epsilons=(0.0,), calib_fraction=0.25,
                              progress=False).fit(x)
    terms = check_protocol(det, "mahalanobis")
    feats = det._features(x)
    conf = det.confidences(x)  # N×L, max over classes of −d
    for label in (0, 1):  # −d to any one class is at most the confidence
        d = torch.stack([det._class_distance(i, f, torch.full((len(x),), label))
                         for i, f in enumerate(feats)], 1)
        assert d.shape == conf.shape and torch.all(-d <= conf + 1e-9)
    own = torch.stack([-det._class_distance(i, f, torch.full((len(x),), -1))
                       for i, f in enumerate(feats)], 1)  # unknown label → the nearest class
    assert torch.allclose(own, conf, atol=1e-6)
    assert torch.allclose(det.combiner_.log_odds(own).float(), det.score(x), atol=1e-4)
    labels = torch.zeros(len(x), dtype=torch.long)
    g = grad_of(lambda v: terms.penalty(v, labels, []), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_mahalanobis_preprocessing_goes_through_bpda(cnn, faces):
    x, _, _ = faces
    det = MahalanobisDetector(cnn, target_fpr=0.1, epsilons=(0.005,), calib_fraction=0.25,
                              progress=False).fit(x)
    assert det.epsilon_ == 0.005
    terms = det.adaptive_terms()
    labels = torch.ones(len(x), dtype=torch.long)
    g = grad_of(lambda v: terms.penalty(v, labels, []), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_lid_penalty_is_the_detector_score(cnn, faces):
    x, _, _ = faces
    det = LIDDetector(cnn, target_fpr=0.1, k=5, minibatch=10, calib_fraction=0.25,
                      progress=False).fit(x)
    terms = check_protocol(det, "lid")
    q = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    with torch.no_grad():
        pen = terms.penalty(q, torch.zeros(len(q), dtype=torch.long), terms.views(q))
    assert torch.allclose(pen.float(), det.score(q), atol=1e-4)
    g = grad_of(lambda v: terms.penalty(v, torch.zeros(len(v), dtype=torch.long), []), q)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.parametrize("cls", [FeatureSqueezingDetector, MahalanobisDetector, LIDDetector,
                                 AmIDetector])
def test_unfitted_detectors_refuse(cnn, cls):
    with pytest.raises(NotFittedError, match="fit"):
        cls(cnn).adaptive_terms()


def test_detectors_without_terms_are_not_adaptive_targets(cnn):
    assert not isinstance(MarginDetector(cnn), attacks.AdaptiveTarget)
