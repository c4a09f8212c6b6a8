"""Label checks of the attacks (raise :class:`InputError`); number and image checks are shared
with every package in :mod:`deepscope._validate`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepscope._validate import check_bool, check_choice, check_images, check_number
from deepscope.errors import InputError
from deepscope.models.execution import check_model_input, model_dtype

__all__ = ["check_attack_images", "check_bool", "check_choice", "check_images",
           "check_label_range", "check_labels", "check_number"]


def check_attack_images(model: nn.Module, x: Any) -> torch.Tensor:
    """Validate the images an attack is called with, against the attacked model.

    Floating N×C×H×W in [0, 1] and finite (:func:`check_images`); for a zoo model, of its
    input shape. Images of another floating dtype than the model's (e.g. float64 from numpy)
    are converted to the model's dtype, so the adversarial images come back in that dtype.
    """
    x = check_images(x)
    check_model_input(model, x)
    dtype = model_dtype(model)
    return x if x.dtype == dtype else x.to(dtype)


def check_labels(y: Any, n: int, device: torch.device, name: str = "y") -> torch.Tensor:
    """Validate integer labels of length ``n`` and move them to ``device`` as int64."""
    if not isinstance(y, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of integer labels, got {type(y).__name__}")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise InputError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.dim() != 1 or y.shape[0] != n:
        raise InputError(f"{name} must have shape ({n},) to match x, got {tuple(y.shape)}")
    return y.detach().to(device=device, dtype=torch.int64)


def check_label_range(y: torch.Tensor, num_classes: int, name: str = "y") -> None:
    """Raise InputError if a label is outside ``[0, num_classes)``."""
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        raise InputError(
            f"{name} must be class indices in [0, {num_classes}) for this model, "
            f"got values in [{lo}, {hi}]"
        )
