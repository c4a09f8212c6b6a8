"""The public Python boundary refuses inputs a model cannot take (issue 11, item 12): NaN/inf and
wrong shapes raise InputError instead of an accuracy or a raw torch RuntimeError; attacks convert
float64 images to the model's dtype."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepscope import attacks, models
from deepscope.errors import InputError
from deepscope.models import execution


@pytest.fixture
def mlp() -> nn.Module:
    return models.zoo.build("mlp-100k", seed=0)  # a zoo model: knows its 1×28×28 input


def _batch(n: int = 8, shape: tuple[int, ...] = (1, 28, 28)) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, *shape, generator=gen), torch.arange(n) % 10


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_evaluate_refuses_non_finite_inputs(mlp, bad):
    x, y = _batch()
    x[1, 0, 3, 4] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        models.evaluate(mlp, (x, y))
    with pytest.raises(InputError, match="NaN or infinite"):
        models.predict_logits(mlp, x)


def test_evaluate_and_predict_refuse_a_wrong_image_size_with_the_expected_shape(mlp):
    x, y = _batch(shape=(1, 20, 20))
    with pytest.raises(InputError, match=r"\(1, 20, 20\).*mlp-100k.*\(1, 28, 28\)"):
        models.evaluate(mlp, (x, y))
    with pytest.raises(InputError, match=r"\(1, 28, 28\)"):
        models.predict_logits(mlp, x)


def test_models_of_unknown_input_shape_are_not_second_guessed():
    model = nn.Sequential(nn.Flatten(), nn.Linear(400, 10))  # not from the zoo
    assert execution.expected_input_shape(model) is None
    x, y = _batch(shape=(1, 20, 20))
    assert models.evaluate(model, (x, y)).n == 8
    assert execution.expected_input_shape(models.zoo.build("cnn-8k")) == (1, 28, 28)


def test_an_attack_converts_float64_images_to_the_model_dtype(mlp):
    x, y = _batch(4)
    result = attacks.get("fgsm", mlp, eps=0.1)(x.double(), y)
    assert result.x_adv.dtype == torch.float32
    same = attacks.get("fgsm", mlp, eps=0.1)(x, y)
    torch.testing.assert_close(result.x_adv, same.x_adv)


def test_an_attack_refuses_three_channel_images_for_a_greyscale_model(mlp):
    x, y = _batch(4, shape=(3, 28, 28))
    with pytest.raises(InputError, match=r"\(3, 28, 28\).*\(1, 28, 28\)"):
        attacks.get("fgsm", mlp, eps=0.1)(x, y)
    x, y = _batch(4, shape=(1, 32, 32))
    with pytest.raises(InputError, match="shape"):
        attacks.get("bim", mlp)(x, y)
