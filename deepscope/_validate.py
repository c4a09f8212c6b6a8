"""Argument checks shared by every package; each raises :class:`~deepscope.errors.InputError`
with a message that says what was wrong and how to fix it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from deepscope.errors import InputError

__all__ = ["check_bool", "check_choice", "check_images", "check_int", "check_number",
           "check_probability"]


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a ``bool``; raise InputError otherwise (no truthy coercion)."""
    if not isinstance(value, bool):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return value


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> Any:
    """Return ``value`` if it is a finite number within the bounds; raise InputError otherwise.

    Parameters
    ----------
    name : str
        Parameter name used in the error message.
    value : Any
        The value to check (``bool`` is rejected; numpy scalars are accepted).
    low, high : float, optional
        Inclusive bounds (exclusive with ``low_open`` / ``high_open``).
    integer : bool
        Require an integer.
    """
    if hasattr(value, "item") and not isinstance(value, torch.Tensor) and getattr(
            value, "ndim", 1) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if integer else "a number"
        raise InputError(f"{name} must be {kind}, got {value!r}")
    if integer and not isinstance(value, int):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise InputError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise InputError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An integer within ``[low, high]``."""
    return int(check_number(name, value, low=low, high=high, integer=True))


def check_probability(name: str, value: Any) -> float:
    """A number in the open interval (0, 1)."""
    return float(check_number(name, value, low=0.0, high=1.0, low_open=True, high_open=True))


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``; raise InputError otherwise."""
    if value not in choices:
        raise InputError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_images(
    x: Any, what: str = "x", *, shape: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Validate a batch of images: floating N×C×H×W, non-empty, finite, values in [0, 1].

    Parameters
    ----------
    x : Any
        The candidate batch.
    what : str
        Its name in error messages.
    shape : tuple of int, optional
        The expected ``(C, H, W)`` (e.g. what a detector was fitted on).

    Returns
    -------
    torch.Tensor
        ``x`` detached (values unchanged).
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"{what} must be a torch.Tensor of images (N×C×H×W), got {type(x).__name__}; "
            "convert with torch.as_tensor(x, dtype=torch.float32)"
        )
    if x.dim() != 4:
        raise InputError(
            f"{what} must be 4-D (N×C×H×W), got shape {tuple(x.shape)}; add the missing "
            "batch/channel dimension (e.g. x.unsqueeze(1) for N×H×W greyscale)"
        )
    if not x.is_floating_point():
        raise InputError(
            f"{what} must be a floating tensor with values in [0, 1], got dtype {x.dtype}"
        )
    if x.shape[0] == 0:
        raise InputError(f"{what} is empty (N = 0); pass at least one image")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise InputError(
            f"{what} has images of shape {tuple(x.shape[1:])} but {tuple(shape)} (C, H, W) "
            "was expected"
        )
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{what} contains NaN or infinite values; clean the inputs first")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(
            f"{what} values must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]; scale pixels to "
            "[0, 1] (e.g. divide uint8 images by 255) and keep normalisation inside the model"
        )
    return x.detach()
