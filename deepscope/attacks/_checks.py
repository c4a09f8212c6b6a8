"""Validation helpers for attack parameters and inputs (raise :class:`InputError`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from deepscope.errors import InputError


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    integer: bool = False,
) -> Any:
    """Return ``value`` if it is a finite number within the bounds; raise InputError otherwise.

    Parameters
    ----------
    name : str
        Parameter name used in the error message.
    value : Any
        The value to check.
    low, high : float, optional
        Inclusive bounds (``low`` is exclusive when ``low_open``).
    low_open : bool
        Treat ``low`` as an exclusive bound.
    integer : bool
        Require an ``int`` (``bool`` is rejected).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if integer else "a number"
        raise InputError(f"{name} must be {kind}, got {value!r}")
    if integer and not isinstance(value, int):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        op = ">" if low_open else ">="
        raise InputError(f"{name} must be {op} {low}, got {value!r}")
    if high is not None and value > high:
        raise InputError(f"{name} must be <= {high}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``; raise InputError otherwise."""
    if value not in choices:
        raise InputError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_images(x: Any) -> torch.Tensor:
    """Validate a batch of images: a floating N×C×H×W tensor, finite, values in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"x must be a torch.Tensor of images (N×C×H×W), got {type(x).__name__}; "
            "convert with torch.as_tensor(x, dtype=torch.float32)"
        )
    if x.dim() != 4:
        raise InputError(
            f"x must be 4-D (N×C×H×W), got shape {tuple(x.shape)}; add the missing "
            "batch/channel dimension (e.g. x.unsqueeze(1) for N×H×W greyscale)"
        )
    if not x.is_floating_point():
        raise InputError(f"x must be a floating tensor with values in [0, 1], got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise InputError("x is empty (N = 0); pass at least one image")
    if not bool(torch.isfinite(x).all()):
        raise InputError("x contains NaN or infinite values; clean the inputs first")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(
            f"x values must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]; scale pixels to [0, 1] "
            "(e.g. divide uint8 images by 255) and keep normalisation inside the model"
        )
    return x.detach()


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
