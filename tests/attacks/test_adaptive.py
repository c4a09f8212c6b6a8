"""The adaptive attacks: they fool the model, and the detector they go through catches fewer
of their examples than of plain BIM examples at the same budget on the same inputs.

The detectors are fitted on held-out benign digits of the shared small model (the 24 attacked
ones excluded). The Mahalanobis and LID combiners are trained on full-budget BIM examples of
those digits, and the plain attack each detector is compared on is the BIM it catches: with
early stopping (minimal, low-confidence examples) for AmI and feature squeezing, all steps for
Mahalanobis and LID. The squeezer is a 2-bit reduction alone: on the synthetic blobs used
without ``$DEEPSCOPE_DATA`` the median filter dilutes the score until plain BIM goes unseen.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from deepscope import attacks
from deepscope.detect import (
    AmIDetector,
    FeatureSqueezingDetector,
    LIDDetector,
    MahalanobisDetector,
    MarginDetector,
)
from deepscope.errors import DeepscopeError, InputError, NotFittedError

_spec = importlib.util.spec_from_file_location("_attacks_model_loader_adaptive",
                                               Path(__file__).with_name("_model.py"))
_loader = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_loader)
helper = _loader.load_helper()

KINDS = ("ami", "squeeze", "mahalanobis", "lid")
EPS = 0.2
PLAIN = {"eps": EPS, "steps": 20, "early_stop": False}  # BIM / PGD at the same budget
#: Whether the plain BIM a detector is compared on stops early (see the module docstring).
PLAIN_EARLY_STOP = {"ami": True, "squeeze": True, "mahalanobis": False, "lid": False}
ADAPTIVE = {"eps": EPS, "steps": 40}
BOXES = torch.tensor([[5, 8, 12, 13], [16, 8, 23, 13]])  # two "eye" boxes on 28×28 digits


def fit_detectors(model, xb, yb):
    """The four detectors, fitted on benign digits ``xb`` (labels ``yb``) of ``model``."""
    x_bim = attacks.get("bim", model, progress=False, **PLAIN)(xb, yb).x_adv
    return {
        "ami": AmIDetector(model, target_fpr=0.1, n_pairs=20, progress=False).fit(
            xb, BOXES.expand(len(xb), 2, 4)),
        "squeeze": FeatureSqueezingDetector(model, target_fpr=0.1, bit_depth=2,
                                            median_size=None, progress=False).fit(xb),
        "mahalanobis": MahalanobisDetector(
            model, target_fpr=0.1, layers=["relu1", "relu2", "drop"], epsilons=(0.002,),
            progress=False,
        ).fit(xb, x_adv=x_bim, labels=yb),
        "lid": LIDDetector(model, target_fpr=0.1, k=10, minibatch=50, progress=False,
                           layers=["relu1", "relu2", "drop", "head"]).fit(xb, x_adv=x_bim),
    }


@pytest.fixture(scope="module")
def setup():
    """(model, x, y, fitted detectors, {kind: the plain BIM result on x}), computed once."""
    with helper.one_thread():
        model, x, y = helper.trained()
        xb, yb = helper.benign()
        dets = fit_detectors(model, xb, yb)
        bim = {stop: attacks.get("bim", model, progress=False, **{**PLAIN, "early_stop": stop})(
            x, y) for stop in (True, False)}
    return model, x, y, dets, {k: bim[PLAIN_EARLY_STOP[k]] for k in KINDS}


@pytest.fixture(scope="module")
def adaptive(setup):
    """Every adaptive attack, untargeted, on the 24 digits (computed once)."""
    model, x, y, dets, _ = setup
    with helper.one_thread():
        return {k: attacks.get(f"adaptive-{k}", model, detector=dets[k], progress=False,
                               **ADAPTIVE)(x, y) for k in KINDS}


def caught(det, result) -> float:
    """Share of the successful adversarial examples of ``result`` that ``det`` flags."""
    return float(det.detect(result.x_adv)[result.success].float().mean())


def test_registered_after_the_plain_attacks():
    assert attacks.names()[-4:] == [f"adaptive-{k}" for k in KINDS]
    for k in KINDS:
        cls = attacks.ATTACKS.get(f"adaptive-{k}")
        assert issubclass(cls, attacks.AdaptiveAttack) and cls.kind == k and cls.bounded_linf
        assert "detector" in cls.param_names()


@pytest.mark.parametrize("kind", KINDS)
def test_fools_the_model_within_eps_and_collapses_its_detector(setup, adaptive, kind):
    model, x, y, dets, plain = setup
    det, r = dets[kind], adaptive[kind]
    assert r.attack == f"adaptive-{kind}"
    assert float(r.success.float().mean()) >= 0.75
    assert float((r.x_adv - x).abs().max()) <= EPS + 1e-6
    assert float(r.x_adv.min()) >= 0.0 and float(r.x_adv.max()) <= 1.0
    with torch.no_grad():
        assert torch.equal(model(r.x_adv).argmax(1), r.adv_labels)
    assert torch.equal(r.success, r.adv_labels != y)
    before, after = caught(det, plain[kind]), caught(det, r)
    assert before >= 0.4, f"{kind} catches only {before:.2f} of plain BIM: the test shows nothing"
    assert after <= before - 0.3, f"{kind}: plain {before:.2f}, adaptive {after:.2f}"


def test_each_attack_is_built_for_its_own_detector(setup, adaptive):
    """The AmI attack does not evade feature squeezing as well as the attack built for it."""
    _, _, _, dets, _ = setup
    fs = dets["squeeze"]
    assert caught(fs, adaptive["squeeze"]) < caught(fs, adaptive["ami"])


def test_targeted_next(setup):
    model, x, y, dets, _ = setup
    r = attacks.get("adaptive-ami", model, detector=dets["ami"], progress=False,
                    **ADAPTIVE)(x[:8], y[:8], target="next")
    assert torch.equal(r.target_labels, (y[:8] + 1) % 10)
    assert torch.equal(r.success, r.adv_labels == r.target_labels)
    assert r.success.any()


def test_wrong_or_missing_detector_is_a_one_line_input_error(setup):
    model, x, _, dets, _ = setup
    with pytest.raises(InputError, match=r"detector=<a fitted AmIDetector"):
        attacks.get("adaptive-ami", model)
    with pytest.raises(InputError, match=r"targets 'ami' detectors, got a 'squeeze'.*AmIDetector"):
        attacks.get("adaptive-ami", model, detector=dets["squeeze"])
    with pytest.raises(InputError, match=r"MarginDetector.*FeatureSqueezingDetector"):
        attacks.get("adaptive-squeeze", model, detector=MarginDetector(model).fit(x))
    with pytest.raises(InputError, match="LIDDetector"):
        attacks.get("adaptive-lid", model, detector="lid")
    with pytest.raises(NotFittedError):
        attacks.get("adaptive-squeeze", model, detector=FeatureSqueezingDetector(model))
    other = helper.build(seed=1).eval()
    with pytest.raises(InputError, match="another model"):
        attacks.get("adaptive-squeeze", other, detector=dets["squeeze"])
    for bad in ({"eps": 0.0}, {"steps": 0}, {"weight": -1.0}):
        with pytest.raises(InputError):
            attacks.get("adaptive-squeeze", model, detector=dets["squeeze"], **bad)
    for err in (InputError, NotFittedError):
        assert issubclass(err, DeepscopeError)


def test_same_seed_same_result(setup):
    model, x, y, dets, _ = setup

    def run(seed):
        return attacks.get("adaptive-squeeze", model, detector=dets["squeeze"], eps=EPS,
                           steps=10, random_start=True, seed=seed, progress=False)(x[:6], y[:6])

    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.iterations, b.iterations)
    assert not torch.equal(a.x_adv, c.x_adv)


def test_params_name_the_detector_and_the_result_is_json(setup, adaptive, tmp_path):
    r = adaptive["mahalanobis"]
    assert r.params["detector"] == "MahalanobisDetector"
    assert r.params["eps"] == EPS and r.params["steps"] == 40
    summary = json.loads(json.dumps(r.to_dict()))
    assert summary["attack"] == "adaptive-mahalanobis"
    back = attacks.AttackResult.load(r.save(tmp_path / "adv.npz"))
    assert torch.equal(back.x_adv, r.x_adv) and back.params["detector"] == "MahalanobisDetector"


def test_early_stop_returns_evading_iterates(setup):
    """With early stopping, a sample that evades stops there: it is fooled and not flagged."""
    model, x, y, dets, _ = setup
    det = dets["lid"]
    r = attacks.get("adaptive-lid", model, detector=det, progress=False, **ADAPTIVE)(x, y)
    flagged = det.detect(r.x_adv)
    stopped = r.iterations < ADAPTIVE["steps"]
    assert stopped.any()
    assert (r.success[stopped] & ~flagged[stopped]).all()


@pytest.mark.parametrize("kind", ["mahalanobis", "lid"])
def test_the_feature_penalty_is_what_evades(setup, adaptive, kind):
    """Without the detector's penalty (weight 0: views and early stopping alone) the detector
    catches more of the examples than with it."""
    model, x, y, dets, _ = setup
    r0 = attacks.get(f"adaptive-{kind}", model, detector=dets[kind], progress=False,
                     weight=0.0, **ADAPTIVE)(x, y)
    assert r0.success.float().mean() >= 0.75
    assert caught(dets[kind], adaptive[kind]) < caught(dets[kind], r0)
