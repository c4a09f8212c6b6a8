"""Private helpers shared by the models package (input checks, devices, model state)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from deepscope.errors import InputError


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (or buffer); CPU for parameter-less models."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """Floating dtype of the model's first floating parameter (float32 if none)."""
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def as_xy(data: Any, what: str = "data") -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, y)`` of a Dataset-like object (``.x``/``.y``), an ``(x, y)`` pair or a tensor."""
    if isinstance(data, torch.Tensor):
        x, y = data, None
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    elif hasattr(data, "x") and hasattr(data, "y"):
        x, y = data.x, data.y
    else:
        raise InputError(
            f"{what} must be a deepscope.data.Dataset, an (x, y) pair or a tensor, "
            f"got {type(data).__name__}"
        )
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InputError(f"{what}.x must be a floating-point tensor, got {_describe(x)}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise InputError(f"{what}.x must be a non-empty batch (N×...), got shape {tuple(x.shape)}")
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.ndim != 1:
            raise InputError(f"{what}.y must be a 1-D int64 tensor of labels, got {_describe(y)}")
        if len(y) != len(x):
            raise InputError(f"{what} has {len(x)} inputs but {len(y)} labels")
        if bool((y < 0).any()):
            raise InputError(f"{what}.y has negative labels")
    return x, y


def classes_of(data: Any, num_classes: int) -> tuple[str, ...]:
    """Class names of a Dataset-like object, or ``("0", "1", ...)``."""
    classes = getattr(data, "classes", None)
    if classes:
        return tuple(str(c) for c in classes)
    return tuple(str(i) for i in range(num_classes))


def _describe(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor of dtype {v.dtype} and shape {tuple(v.shape)}"
    return type(v).__name__


ModelState = tuple[list[tuple[nn.Module, bool]], list[tuple[nn.Parameter, bool]]]


def snapshot_state(model: nn.Module) -> ModelState:
    """Record every module's ``training`` flag and every parameter's ``requires_grad``."""
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    return modes, grads


def restore_state(state: ModelState) -> None:
    """Put back the ``training`` flags and ``requires_grad`` recorded by :func:`snapshot_state`."""
    modes, grads = state
    for m, training in modes:
        m.training = training
    for p, requires_grad in grads:
        p.requires_grad_(requires_grad)


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Restore ``training`` flags and ``requires_grad`` on exit, also after an exception."""
    state = snapshot_state(model)
    try:
        yield
    finally:
        restore_state(state)
