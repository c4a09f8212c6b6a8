"""Attack results on disk: functions over ``AttackResult.save`` and ``AttackResult.load``."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope._persist import read_npz
from deepscope._typing import PathType
from deepscope.attacks.base import AttackResult
from deepscope.errors import InputError

__all__ = ["load_npz", "save_npz"]


def save_npz(
    result: AttackResult, path: PathType, *, x: torch.Tensor | None = None,
    overwrite: bool = False, compress: bool = True,
) -> Path:
    """Write ``result`` to ``path`` as an ``.npz`` file, atomically (see :meth:`AttackResult.save`).

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
    return result.save(path, overwrite=overwrite, x=x, compress=compress)


def load_npz(path: PathType) -> dict[str, Any]:
    """Read a file written by :func:`save_npz`: arrays by name plus ``summary`` (a dict).

    Files written before the JSON header existed (arrays plus ``summary_json`` only) are read too.
    """
    path = Path(path)
    try:
        _, arrays = read_npz(path, "attack-result")
    except InputError:
        arrays = _legacy(path)
    out: dict[str, Any] = {k: v for k, v in arrays.items() if k != "summary_json"}
    if "summary_json" in arrays:
        out["summary"] = json.loads(str(arrays["summary_json"]))
    return out


def _legacy(path: Path) -> dict[str, np.ndarray]:
    """Arrays of an attack file without a header, or the header error of :func:`read_npz`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x_adv" in data.files and "meta_json" not in data.files:
                return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        pass
    read_npz(path, "attack-result")  # raises the precise error
    raise InputError(f"{path} is not a deepscope attack file")  # pragma: no cover
