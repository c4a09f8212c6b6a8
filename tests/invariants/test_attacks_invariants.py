"""Invariants every registered attack must keep, run table-driven over the registry.

Adding an attack to ``deepscope.attacks`` without a row in ``FAST`` (or, for an adaptive attack,
in ``ADAPTIVE`` with the detector it goes through) fails ``test_every_attack_has_a_row``.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from deepscope import attacks, detect
from deepscope.errors import InputError

_spec = importlib.util.spec_from_file_location(
    "_attacks_model_loader_inv", Path(__file__).parents[1] / "attacks" / "_model.py")
_loader = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_loader)
helper = _loader.load_helper()

# Cheap settings per attack (enough to succeed on some samples of the small model).
FAST: dict[str, dict] = {
    "fgsm": {"eps": 0.3},
    "bim": {"eps": 0.3, "steps": 8},
    "cw-l2": {"steps": 20, "binary_search_steps": 2, "initial_const": 1.0, "lr": 0.05},
    "cw-linf": {"max_iter": 10, "initial_const": 0.1, "largest_const": 1.0, "lr": 0.05},
    "cw-l0": {"steps": 10, "max_const_steps": 1, "initial_const": 1.0, "freeze_fraction": 0.5,
              "lr": 0.05},
    "patch": {"size": 10, "steps": 30, "location": "center", "step_size": 0.1},
    "glasses": {"steps": 30, "step_size": 0.1, "thickness": 2.0, "pad": 1.0},
}
# Adaptive attacks: their cheap settings and the detector (name, parameters) they go through,
# fitted on held-out digits of the model being attacked.
ADAPTIVE: dict[str, tuple[dict, str, dict]] = {
    "adaptive-ami": ({"eps": 0.3, "steps": 8}, "ami",
                     {"n_pairs": 8, "alphas": (0.5,)}),
    "adaptive-squeeze": ({"eps": 0.3, "steps": 8}, "squeeze", {}),
    "adaptive-mahalanobis": ({"eps": 0.3, "steps": 8}, "mahalanobis", {"epsilons": (0.0,)}),
    "adaptive-lid": ({"eps": 0.3, "steps": 8}, "lid", {"k": 5, "minibatch": 20}),
}
for _name, (_params, _, _) in ADAPTIVE.items():
    FAST[_name] = _params
NAMES = list(FAST)


_SHARED_DETECTORS: dict[str, dict] = {}


def _detector_kwargs(name: str, model) -> dict:
    """``{"detector": <fitted detector on model>}`` for an adaptive attack, else ``{}``
    (fitted once for the shared model, anew for the copies the state tests make)."""
    if name not in ADAPTIVE:
        return {}
    shared = model is helper.trained()[0]
    if shared and name in _SHARED_DETECTORS:
        return _SHARED_DETECTORS[name]
    out = _fit_detector(name, model)
    if shared:
        _SHARED_DETECTORS[name] = out
    return out


def _fit_detector(name: str, model) -> dict:
    _, kind, params = ADAPTIVE[name]
    xb, _ = helper.benign()
    xb = xb[:60]
    det = detect.get(kind, model, target_fpr=0.1, progress=False, **params)
    if det.takes_boxes:
        return {"detector": det.fit(xb, _boxes(len(xb)))}
    return {"detector": det.fit(xb)}


def _boxes(n: int) -> torch.Tensor:
    """Two 'eye' boxes on 28×28 digits (x0, y0, x1, y1; exclusive ends)."""
    return torch.tensor([[5, 8, 12, 13], [16, 8, 23, 13]]).expand(n, 2, 4).clone()


def _call_kwargs(name: str, n: int) -> dict:
    return {"boxes": _boxes(n)} if name == "glasses" else {}


def run(name, model, x, y, target=None, **params):
    if "detector" not in params:
        params = {**_detector_kwargs(name, model), **params}
    attack = attacks.get(name, model, progress=False, **{**FAST[name], **params})
    return attack(x, y, target=target, **_call_kwargs(name, x.shape[0]))


@pytest.fixture(scope="module")
def digits():
    with helper.one_thread():
        model, x, y = helper.trained()
    return model, x[:8], y[:8]


@pytest.fixture(scope="module")
def results(digits):
    """Every attack, untargeted and towards the next label, computed once per module."""
    model, x, y = digits
    with helper.one_thread():
        return {(name, t): run(name, model, x, y, target=t)
                for name in NAMES for t in (None, "next")}


@pytest.fixture(autouse=True)
def _one_thread():
    with helper.one_thread():
        yield


def test_every_attack_has_a_row():
    assert attacks.names() == ["fgsm", "bim", "cw-l2", "cw-linf", "cw-l0", "patch", "glasses",
                               "adaptive-ami", "adaptive-squeeze", "adaptive-mahalanobis",
                               "adaptive-lid"]
    assert sorted(FAST) == sorted(attacks.names())
    assert all(issubclass(attacks.ATTACKS.get(n), attacks.AdaptiveAttack) for n in ADAPTIVE)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("target", [None, "next"])
def test_outputs_are_images_in_the_unit_box(results, digits, name, target):
    _, x, _ = digits
    r = results[name, target]
    assert r.x_adv.shape == x.shape and r.x_adv.dtype == x.dtype
    assert r.x_adv.device == x.device
    assert float(r.x_adv.min()) >= 0.0 and float(r.x_adv.max()) <= 1.0
    assert torch.isfinite(r.x_adv).all()
    assert not r.x_adv.requires_grad


@pytest.mark.parametrize("name", [n for n in NAMES if attacks.ATTACKS.get(n).bounded_linf])
@pytest.mark.parametrize("target", [None, "next"])
def test_linf_attacks_stay_within_eps(results, digits, name, target):
    _, x, _ = digits
    r = results[name, target]
    eps = r.params["eps"]
    assert float((r.x_adv - x).abs().max()) <= eps + 1e-6
    assert float(r.linf.max()) <= eps + 1e-6


@pytest.mark.parametrize("name", [n for n in NAMES if attacks.ATTACKS.get(n).masked])
@pytest.mark.parametrize("target", [None, "next"])
def test_masked_attacks_change_nothing_outside_the_mask(results, digits, name, target):
    _, x, _ = digits
    r = results[name, target]
    assert r.mask is not None and r.mask.dtype == torch.bool
    assert r.mask.shape == (x.shape[0], 1, *x.shape[2:])
    outside = ~r.mask.expand_as(x)
    assert outside.any() and (~outside).any()
    assert torch.equal(r.x_adv[outside], x[outside])  # exact, not approximate
    assert (r.x_adv != x).any()  # the attack did change something inside


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("target", [None, "next"])
def test_success_and_labels_match_the_model(results, digits, name, target):
    model, _, y = digits
    r = results[name, target]
    with torch.no_grad():
        pred = model(r.x_adv).argmax(1)
    assert torch.equal(pred, r.adv_labels)
    if target is None:
        assert r.target_labels is None
        assert torch.equal(r.success, pred != y)
    else:
        assert torch.equal(r.target_labels, (y + 1) % 10)
        assert torch.equal(r.success, pred == r.target_labels)
        # A targeted success really has the target label.
        assert torch.equal(pred[r.success], r.target_labels[r.success])
    assert r.success.any(), f"{name} never succeeded: the attack is broken or too weak"


@pytest.mark.parametrize("name", NAMES)
def test_norms_and_summary(results, digits, name):
    _, x, _ = digits
    r = results[name, "next"]
    d = (r.x_adv - x).flatten(1)
    assert torch.allclose(r.l2, d.norm(dim=1))
    assert torch.allclose(r.linf, d.abs().amax(1))
    assert torch.equal(r.l0, (d.abs() > attacks.L0_TOL).sum(1))  # one channel: pixels = values
    assert (r.iterations >= 0).all() and r.iterations.dtype == torch.int64
    summary = json.loads(json.dumps(r.to_dict()))
    assert summary["attack"] == name and summary["target"] == "next"
    assert summary["n"] == x.shape[0]
    assert summary["success_rate"] == pytest.approx(float(r.success.float().mean()))
    assert summary["mean_l2"] == pytest.approx(float(r.l2[r.success].mean()), rel=1e-5)
    assert summary["seconds_per_100"] == pytest.approx(r.seconds / x.shape[0] * 100)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_result(digits, name):
    model, x, y = digits
    x, y = x[:4], y[:4]
    extra = {}
    if attacks.ATTACKS.get(name).masked:  # exercise the random parts
        extra["init"] = "random"
    if name == "patch":
        extra["location"] = "random"
    a = run(name, model, x, y, target="first", seed=7, **extra)
    b = run(name, model, x, y, target="first", seed=7, **extra)
    assert torch.equal(a.x_adv, b.x_adv)
    assert torch.equal(a.iterations, b.iterations)
    if extra:
        c = run(name, model, x, y, target="first", seed=8, **extra)
        assert not torch.equal(a.x_adv, c.x_adv)


@pytest.mark.parametrize("name", NAMES)
def test_model_state_restored_and_no_grads(digits, name):
    model, x, y = digits
    m = copy.deepcopy(model)
    m.train()
    m.head.weight.requires_grad_(False)  # a mixed pattern must come back as it was
    flags = [p.requires_grad for p in m.parameters()]
    r = run(name, m, x[:4], y[:4], target="next")
    assert m.training and all(mod.training for mod in m.modules())
    assert [p.requires_grad for p in m.parameters()] == flags
    assert all(p.grad is None for p in m.parameters())
    # The attack ran the model in eval mode: its labels are the eval-mode predictions.
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(r.x_adv).argmax(1), r.adv_labels)


class _Fails(torch.nn.Module):
    """Wraps a model and raises on the n-th forward call."""

    def __init__(self, inner: torch.nn.Module, fail_at: int) -> None:
        super().__init__()
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom")
        return self.inner(x)


@pytest.mark.parametrize("name", NAMES)
def test_model_state_restored_after_an_exception(digits, name):
    model, x, y = digits
    m = _Fails(copy.deepcopy(model), fail_at=0)
    extra = _detector_kwargs(name, m)  # fitted before the failures are armed
    m.calls, m.fail_at = 0, 3
    m.train()
    flags = [p.requires_grad for p in m.parameters()]
    with pytest.raises(RuntimeError, match="boom"):
        run(name, m, x[:4], y[:4], target="next", **extra)
    assert m.training and m.inner.bn1.training
    assert [p.requires_grad for p in m.parameters()] == flags
    assert all(p.grad is None for p in m.parameters())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "bad",
    ["above_one", "nan", "three_d", "int_dtype", "y_length", "y_range", "y_float",
     "target_word", "target_range", "not_tensor"],
)
def test_bad_input_raises_input_error(digits, name, bad):
    model, x, y = digits
    x, y = x[:3].clone(), y[:3].clone()
    target = None
    if bad == "above_one":
        x[0, 0, 0, 0] = 1.5
    elif bad == "nan":
        x[1, 0, 3, 3] = float("nan")
    elif bad == "three_d":
        x = x[:, 0]
    elif bad == "int_dtype":
        x = (x * 255).to(torch.uint8)
    elif bad == "y_length":
        y = y[:2]
    elif bad == "y_range":
        y[0] = 10
    elif bad == "y_float":
        y = y.float()
    elif bad == "target_word":
        target = "last"
    elif bad == "target_range":
        target = torch.tensor([0, 1, 11])
    elif bad == "not_tensor":
        x = x.numpy()
    attack = attacks.get(name, model, progress=False, **FAST[name],
                         **_detector_kwargs(name, model))
    with pytest.raises(InputError):
        attack(x, y, target=target, **_call_kwargs(name, 3))
