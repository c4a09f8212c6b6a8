"""Input helpers shared by the techniques: ``(x, y)`` of a Dataset-like object, class names."""

from __future__ import annotations

from typing import Any

import torch

from deepscope.errors import InputError


def as_xy(data: Any, what: str = "data") -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, y)`` of a Dataset-like object (``.x``/``.y``), an ``(x, y)`` pair or a tensor.

    ``x`` is floating (images, features) or int64 N×T (token / byte ids); ``y`` one int64
    label per sample.
    """
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
    sequences = isinstance(x, torch.Tensor) and x.dtype == torch.int64 and x.ndim == 2
    if not isinstance(x, torch.Tensor) or not (x.is_floating_point() or sequences):
        raise InputError(f"{what}.x must be a floating-point tensor (images) or int64 N×T token "
                         f"ids, got {_describe(x)}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise InputError(f"{what}.x must be a non-empty batch (N×...), got shape {tuple(x.shape)}")
    if y is not None:
        per_position = sequences and isinstance(y, torch.Tensor) and y.shape == x.shape
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or (
                y.ndim != 1 and not per_position):
            raise InputError(f"{what}.y must be a 1-D int64 tensor of labels (or N×T labels of "
                             f"N×T sequences), got {_describe(y)}")
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
