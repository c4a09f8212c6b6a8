"""The attack base: registry, parameters, targets, norms, batching, dtypes."""

from __future__ import annotations

import copy

import pytest
import torch

from deepscope import attacks
from deepscope.attacks.base import _resolve_target
from deepscope.errors import InputError, RegistryError


def test_names_and_get():
    assert attacks.names() == ["fgsm", "bim", "cw-l2", "cw-linf", "cw-l0", "patch", "glasses",
                               "adaptive-ami", "adaptive-squeeze", "adaptive-mahalanobis",
                               "adaptive-lid"]
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    a = attacks.get("cw-l2", model, steps=5, progress=False)
    assert isinstance(a, attacks.CarliniWagnerL2) and a.steps == 5
    assert a.get_params()["steps"] == 5 and "model" not in a.get_params()
    with pytest.raises(RegistryError, match="fgsm"):
        attacks.get("deepfool", model)
    with pytest.raises(InputError, match="eps"):
        attacks.get("cw-l2", model, eps=0.1)
    with pytest.raises(InputError):
        attacks.get("fgsm", lambda x: x)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("fgsm", {"eps": 0.0}), ("fgsm", {"eps": 1.5}), ("bim", {"steps": 0}),
        ("bim", {"step_size": -1.0}), ("cw-l2", {"binary_search_steps": 0}),
        ("cw-l2", {"confidence": -1.0}), ("cw-l2", {"tanh_scale": 1.0}),
        ("cw-linf", {"decrease_factor": 1.0}), ("cw-linf", {"const_factor": 1.0}),
        ("cw-l0", {"freeze_fraction": 0.0}), ("patch", {"size": 0}),
        ("patch", {"location": "middle"}), ("patch", {"init": "zeros"}),
        ("glasses", {"eyes": (0, 0)}), ("glasses", {"thickness": 0.0}),
        ("fgsm", {"batch_size": 0}), ("fgsm", {"seed": -1}), ("bim", {"steps": 2.5}),
    ],
)
def test_invalid_parameters_raise(name, params):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with pytest.raises(InputError):
        attacks.get(name, model, **params)


def test_target_resolution():
    y = torch.tensor([0, 3, 9])
    assert _resolve_target(None, y, 10) == (None, None)
    spec, t = _resolve_target("first", y, 10)
    assert spec == "first" and t.tolist() == [0, 0, 0]
    spec, t = _resolve_target("next", y, 10)
    assert spec == "next" and t.tolist() == [1, 4, 0]
    spec, t = _resolve_target(7, y, 10)
    assert spec == "custom" and t.tolist() == [7, 7, 7]
    spec, t = _resolve_target(torch.tensor([2, 2, 5], dtype=torch.int32), y, 10)
    assert t.dtype == torch.int64 and t.tolist() == [2, 2, 5]
    for bad in ("last", 10, -1, True, torch.tensor([1, 2]), torch.tensor([1.0, 2.0, 3.0]), 1.5):
        with pytest.raises(InputError):
            _resolve_target(bad, y, 10)


def test_perturbation_norms_count_pixels_not_values():
    x = torch.zeros(2, 3, 4, 4)
    xa = x.clone()
    xa[0, :, 0, 0] = 0.5  # one pixel, three channels
    xa[0, 1, 2, 3] = -0.25  # a second pixel, one channel
    xa[1, 0, 1, 1] = 0.5e-6  # below the L0 tolerance
    l0, l2, linf = attacks.perturbation_norms(x, xa)
    assert l0.tolist() == [2, 0]
    assert l2[0].item() == pytest.approx((3 * 0.25 + 0.0625) ** 0.5)
    assert linf.tolist() == pytest.approx([0.5, 0.5e-6])


def test_batches_give_the_same_result_as_one_batch(digits):
    model, x, y = digits
    one = attacks.get("bim", model, eps=0.2, steps=5, progress=False)(x, y)
    many = attacks.get("bim", model, eps=0.2, steps=5, batch_size=5, progress=False)(x, y)
    assert torch.allclose(one.x_adv, many.x_adv, atol=1e-6)
    assert torch.equal(one.success, many.success)


def test_float64_inputs_keep_their_dtype(digits):
    model, x, y = digits
    m64 = copy.deepcopy(model).double()
    for name, params in (("fgsm", {"eps": 0.2}), ("cw-l2", {"steps": 5,
                                                            "binary_search_steps": 1})):
        r = attacks.get(name, m64, progress=False, **params)(x[:4].double(), y[:4])
        assert r.x_adv.dtype == torch.float64 and r.l2.dtype == torch.float64


def test_extra_call_arguments_are_rejected(digits):
    model, x, y = digits
    with pytest.raises(InputError, match="boxes"):
        attacks.get("fgsm", model, progress=False)(x, y, boxes=torch.zeros(len(x), 2, 4))


def test_model_must_return_logits(digits):
    _, x, y = digits
    bad = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1))
    with pytest.raises(InputError, match="logits"):
        attacks.get("fgsm", bad, progress=False)(x, y)


def test_works_under_no_grad(digits):
    model, x, y = digits
    with torch.no_grad():
        r = attacks.get("bim", model, eps=0.3, steps=5, progress=False)(x, y)
    assert r.success.any()


def test_progress_bar_can_be_silenced(digits, capsys):
    model, x, y = digits
    attacks.get("fgsm", model, progress=False)(x, y)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
