"""The one converter from deepscope's values (numpy, torch, dataclasses, paths) to JSON types."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

import numpy as np
import torch


def to_jsonable(obj: Any, *, tensors: str = "list") -> Any:
    """Turn ``obj`` into plain dicts, lists, strings, numbers, booleans and ``None``.

    Parameters
    ----------
    obj : Any
        Nested mappings, sequences, numpy arrays and scalars, torch tensors, dataclasses,
        enums and paths.
    tensors : {"list", "shape"}
        Arrays and tensors become nested lists (default) or a short ``"tensor(3, 4)"`` string
        (for parameter summaries that should stay small).

    Notes
    -----
    Non-finite floats become ``None`` so that the output is strict JSON.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item(), tensors=tensors)
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        if tensors == "shape":
            return f"tensor{tuple(obj.shape)}"
        arr = obj.detach().cpu().numpy() if isinstance(obj, torch.Tensor) else obj
        return to_jsonable(arr.tolist(), tensors=tensors)
    if isinstance(obj, Enum):
        return to_jsonable(obj.value, tensors=tensors)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, torch.device | torch.dtype):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return to_jsonable(obj.to_dict(), tensors=tensors)
        return {f.name: to_jsonable(getattr(obj, f.name), tensors=tensors)
                for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, tensors=tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v, tensors=tensors) for v in obj]
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")
