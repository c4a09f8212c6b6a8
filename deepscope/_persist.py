"""One file format for every saved object and result: an ``.npz`` of plain arrays plus a JSON
header, written atomically and read with ``allow_pickle=False``.

The header (array ``meta_json``) records ``format`` (what kind of object: ``"detector"``,
``"explanation"``, ...), ``version`` and whatever the object needs (parameters, learned scalars).
Arrays are stored under their own names. Nothing is ever unpickled, so a file from an untrusted
source cannot run code.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope._atomic import atomic_write
from deepscope._jsonable import to_jsonable
from deepscope._typing import PathType
from deepscope.errors import InputError

__all__ = ["check_destination", "read_npz", "subarrays", "write_npz"]

_META = "meta_json"


def check_destination(path: PathType, *, overwrite: bool) -> Path:
    """Refuse an existing ``path`` (unless ``overwrite``) or a missing / unwritable folder."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; pass overwrite=True or choose another path")
    if not path.parent.is_dir():
        raise InputError(f"folder {path.parent} does not exist; create it first")
    return path


def write_npz(
    path: PathType,
    kind: str,
    meta: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray | torch.Tensor],
    *,
    version: int = 1,
    overwrite: bool = False,
    compress: bool = True,
) -> Path:
    """Write ``arrays`` and the JSON header ``{format: kind, version, **meta}`` to ``path``."""
    path = check_destination(path, overwrite=overwrite)
    if _META in arrays:
        raise InputError(f"{_META!r} is reserved for the header")
    out: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if arr.dtype == object:
            raise InputError(f"array {name!r} has dtype object; only plain arrays are saved")
        out[name] = arr
    header = {"format": kind, "version": version, **to_jsonable(dict(meta))}
    out[_META] = np.array(json.dumps(header))
    with atomic_write(path) as fh:
        (np.savez_compressed if compress else np.savez)(fh, **out)
    return path


def read_npz(
    path: PathType, kind: str, *, versions: tuple[int, ...] = (1,)
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by :func:`write_npz`; return ``(header, arrays)``.

    Raises
    ------
    InputError
        The file is missing, not an ``.npz``, truncated, holds pickled objects, is another kind
        of deepscope file, or has an unknown version.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: not a readable deepscope {kind} file (the file is empty)")
    if not zipfile.is_zipfile(path):  # np.load would take it for a pickle and say so
        raise InputError(f"{path}: not a readable deepscope {kind} file (not an .npz archive: "
                         "truncated, or another kind of file)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if _META not in data.files:
                raise InputError(f"{path} is not a deepscope {kind} file (no header)")
            header = json.loads(str(data[_META]))
            arrays = {k: data[k] for k in data.files if k != _META}
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable deepscope {kind} file ({reason})") from None
    if not isinstance(header, dict) or header.get("format") != kind:
        found = header.get("format") if isinstance(header, dict) else None
        raise InputError(f"{path} is a deepscope {found!r} file, not a {kind!r} file")
    if header.get("version") not in versions:
        raise InputError(
            f"{path} has {kind} format version {header.get('version')}; this deepscope reads "
            f"version {', '.join(map(str, versions))}"
        )
    return header, arrays


def subarrays(arrays: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of ``arrays`` whose name starts with ``prefix``, with the prefix removed.

    Composite results store their parts' arrays under ``"part/"`` prefixes; this reads one part
    back (``subarrays({"mode/w": a, "x": b}, "mode/") == {"w": a}``).
    """
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
