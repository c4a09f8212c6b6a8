"""Finished shards on disk: written atomically as they complete, skipped by a re-run.

A store is a folder holding ``manifest.json`` (what run the shards belong to: the job's
fingerprint and the shard plan) and one file per finished shard, ``shard-00003.npz``. Every
file is written to a temporary name and renamed (:mod:`deepscope._atomic`), so a worker or
driver that dies mid-write leaves no partial shard. A re-run with the same job and plan reuses
the finished shards; a folder holding another run is refused, never mixed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope._atomic import atomic_write
from deepscope._typing import PathType
from deepscope.distributed.shards import ShardPlan
from deepscope.errors import InputError

MANIFEST = "manifest.json"
_FORMAT = "deepscope-shards"
#: Attribute names left out of fingerprints: timings and display switches change from run to run.
_VOLATILE = ("seconds", "progress", "black_box_")


def _skip(name: str) -> bool:
    return any(v in name for v in _VOLATILE)


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _feed(h: Any, obj: Any, depth: int = 0) -> None:
    """Hash ``obj``'s content: arrays by bytes, containers and objects by their fields."""
    if depth > 8:
        h.update(b"<deep>")
    elif isinstance(obj, torch.nn.Module):
        for name, t in sorted(obj.state_dict().items()):
            h.update(name.encode())
            _feed(h, t, depth + 1)
    elif isinstance(obj, torch.Tensor):
        _feed(h, obj.detach().cpu().numpy(), depth + 1)
    elif isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            if not _skip(str(k)):
                h.update(str(k).encode())
                _feed(h, obj[k], depth + 1)
    elif isinstance(obj, list | tuple):
        h.update(f"{type(obj).__name__}{len(obj)}".encode())
        for v in obj:
            _feed(h, v, depth + 1)
    elif obj is None or isinstance(obj, str | bytes | int | float | bool | np.generic):
        h.update(repr(obj).encode())
    elif inspect.isfunction(obj) or inspect.ismethod(obj):  # closures: the captured values
        func = getattr(obj, "__func__", obj)
        h.update(func.__qualname__.encode())
        cells = [_cell(c) for c in func.__closure__ or ()]
        _feed(h, [getattr(obj, "__self__", None), *cells], depth + 1)
    elif callable(obj) and not hasattr(obj, "__dict__"):
        h.update(b"<callable>")
    else:
        h.update(type(obj).__qualname__.encode())
        state = ({f.name: getattr(obj, f.name) for f in fields(obj)} if is_dataclass(obj)
                 else getattr(obj, "__dict__", {}))
        _feed(h, {k: v for k, v in state.items() if not callable(v) or hasattr(v, "__dict__")},
              depth + 1)


def digest(*objs: Any) -> str:
    """sha256 of the content of ``objs`` (see :func:`_feed`); timings and callables ignored."""
    h = hashlib.sha256()
    for obj in objs:
        _feed(h, obj)
    return h.hexdigest()


class ShardStore:
    """The folder of a run's finished shards.

    Parameters
    ----------
    folder : str or PathLike
        Created if missing.
    fingerprint : dict
        JSON-able identity of the run (the job's :meth:`fingerprint`).
    plan : ShardPlan
        The shard plan; part of the identity.
    suffix : str
        File suffix of a shard (``".npz"``).
    """

    def __init__(self, folder: PathType, fingerprint: dict[str, Any], plan: ShardPlan,
                 suffix: str = ".npz") -> None:
        self.folder = Path(folder)
        self.plan = plan
        self.suffix = suffix
        self.manifest = {"format": _FORMAT, "version": 1, "job": fingerprint,
                         "plan": plan.to_dict()}
        self._open()

    def _open(self) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"{self.folder} is a file; the shard store is a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / MANIFEST
        if not path.exists():
            with atomic_write(path, binary=False) as fh:
                json.dump(self.manifest, fh, indent=2, sort_keys=True)
            return
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path} is not a readable shard manifest ({exc})") from None
        if found != json.loads(json.dumps(self.manifest)):
            differ = sorted(k for k in set(found.get("job", {})) | set(self.manifest["job"])
                            if found.get("job", {}).get(k) != self.manifest["job"].get(k))
            if found.get("plan") != self.manifest["plan"]:
                differ.append("shard plan")
            raise InputError(f"{self.folder} holds the shards of another run (different "
                             f"{', '.join(differ) or 'format'}); pass another folder or remove "
                             "it")

    def path(self, index: int) -> Path:
        """File of shard ``index``."""
        return self.folder / f"shard-{index:05d}{self.suffix}"

    def done(self) -> list[int]:
        """Indices of the finished shards."""
        return [i for i in range(len(self.plan)) if self.path(i).is_file()]

    def write(self, index: int, result: Any, save: Callable[[Any, Path], Any]) -> None:
        """Write shard ``index`` with ``save(result, path)`` (the savers write atomically)."""
        save(result, self.path(index))

    def read(self, index: int, load: Callable[[Path], Any]) -> Any:
        """Read shard ``index`` with ``load(path)``."""
        return load(self.path(index))
