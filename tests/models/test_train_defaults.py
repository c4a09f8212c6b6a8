"""Per-architecture training defaults and the eval-vs-train-mode warning of ``fit``."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from deepscope.models import fit, zoo
from deepscope.models.train_checks import TrainEvalGapWarning, check_train_eval_gap


def _bn_data(offset: float = 50.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian classes in 4-D, far from the origin (BatchNorm must learn the offset)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(200, 4, generator=g) + offset + 3.0 * y[:, None].float()
    return x, y


def _bn_model(momentum: float) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16, momentum=momentum), nn.ReLU(),
                         nn.Linear(16, 2))


def test_warns_when_batchnorm_statistics_are_wrong():
    # momentum 0: the running statistics never leave mean 0 / variance 1, so eval mode sees
    # activations around 50 while train mode normalises them: accurate in train mode only
    x, y = _bn_data()
    with pytest.warns(TrainEvalGapWarning, match="eval-mode accuracy"):
        fit(_bn_model(momentum=0.0), (x, y), epochs=5, batch_size=20, lr=1e-2,
            progress=False)


def test_no_warning_on_a_healthy_model():
    x, y = _bn_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainEvalGapWarning)
        model = fit(_bn_model(momentum=0.1), (x, y), epochs=5, batch_size=20, lr=1e-2,
                    progress=False)
    assert check_train_eval_gap(model, x, y, 1.0) > 0.9


def test_check_reports_the_eval_accuracy_and_threshold():
    x, y = _bn_data()
    model = _bn_model(momentum=0.0).eval()  # untrained: chance level
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainEvalGapWarning)
        acc = check_train_eval_gap(model, x, y, 0.6, threshold=0.6)
    assert 0.0 <= acc <= 1.0
    with pytest.warns(TrainEvalGapWarning):
        check_train_eval_gap(model, x, y, acc + 0.25)


@pytest.mark.parametrize("name", zoo.names())
def test_every_architecture_has_training_defaults(name):
    d = zoo.training_defaults(name)
    assert d.epochs >= 1 and d.lr > 0 and d.batch_size >= 1 and 0 <= d.val_fraction < 0.5
    kwargs = d.fit_kwargs()
    assert set(kwargs) == {"epochs", "lr", "batch_size", "patience", "weight_decay", "augment",
                            "class_weight"}
    assert zoo.spec(name).to_dict()["training"] == d.to_dict()


def test_face_models_train_without_validation_in_small_batches():
    for name in ("face-cnn-26k", "face-vgg-1.2m"):
        d = zoo.training_defaults(name)
        assert d.val_fraction == 0.0 and d.batch_size <= 32 and d.augment == "faces"
        assert d.fit_kwargs()["augment"] is not None
