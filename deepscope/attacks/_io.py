"""Saving attack results: an ``.npz`` of arrays plus a JSON summary, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope._atomic import atomic_write
from deepscope._typing import PathType
from deepscope.attacks.base import AttackResult
from deepscope.errors import InputError


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def save_npz(
    result: AttackResult, path: PathType, *, x: torch.Tensor | None = None,
    overwrite: bool = False, compress: bool = True,
) -> Path:
    """Write ``result`` to ``path`` as an ``.npz`` file, atomically.

    The archive holds ``x_adv``, ``success``, ``y``, ``adv_labels``, ``l0``, ``l2``, ``linf``,
    ``iterations``, ``target_labels`` (targeted attacks), ``mask`` (masked attacks), ``x``
    (when given) and ``summary_json`` (``result.to_dict()`` as a JSON string). It is written
    to a temporary file in the same folder and renamed, so no partial file is ever left.
    Read it back with :func:`load_npz` (or ``np.load(path, allow_pickle=False)``).

    Parameters
    ----------
    result : AttackResult
        What an attack returned.
    path : str or PathLike
        Destination file (conventionally ending in ``.npz``); its folder must exist.
    x : torch.Tensor, optional
        The original inputs, stored as ``x`` (must match ``result.x_adv`` in shape).
    overwrite : bool
        Replace an existing file; otherwise an existing file raises InputError.
    compress : bool
        Use ``np.savez_compressed``.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    if not isinstance(result, AttackResult):
        raise InputError(f"result must be an AttackResult, got {type(result).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"folder {path.parent} does not exist; create it first")
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass overwrite=True to replace it")
    arrays: dict[str, np.ndarray] = {
        "x_adv": _np(result.x_adv), "success": _np(result.success), "y": _np(result.y),
        "adv_labels": _np(result.adv_labels), "l0": _np(result.l0), "l2": _np(result.l2),
        "linf": _np(result.linf), "iterations": _np(result.iterations),
    }
    if result.target_labels is not None:
        arrays["target_labels"] = _np(result.target_labels)
    if result.mask is not None:
        arrays["mask"] = _np(result.mask)
    if x is not None:
        if not isinstance(x, torch.Tensor) or x.shape != result.x_adv.shape:
            raise InputError(f"x must be a tensor of shape {tuple(result.x_adv.shape)} "
                             "(the attacked inputs)")
        arrays["x"] = _np(x)
    arrays["summary_json"] = np.array(json.dumps(result.to_dict()))
    with atomic_write(path) as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return path


def load_npz(path: PathType) -> dict[str, Any]:
    """Read a file written by :func:`save_npz`: arrays by name plus ``summary`` (a dict)."""
    with np.load(Path(path), allow_pickle=False) as data:
        out: dict[str, Any] = {k: data[k] for k in data.files if k != "summary_json"}
        if "summary_json" in data.files:
            out["summary"] = json.loads(str(data["summary_json"]))
    return out
