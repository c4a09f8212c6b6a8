"""What a distributed run runs: a :class:`Job` per technique, and the model file it ships.

A job is sent once to each worker (Ray's object store, then the worker's constructor), prepares
itself there once (:meth:`Job.setup`: load the model, rebind the black box), then runs shard
after shard (:meth:`Job.run`). The driver saves each finished shard (:meth:`Job.save`), reads
back resumed ones (:meth:`Job.load`) and joins them in input order (:meth:`Job.merge`).
"""

from __future__ import annotations

import hashlib
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deepscope._typing import PathType
from deepscope.errors import CheckpointError, InputError
from deepscope.models.io import Checkpoint, load_checkpoint


@dataclass(frozen=True)
class ModelFile:
    """A checkpoint's bytes, shipped to workers and loaded there with the safe loader.

    The worker checks the sha256, writes the bytes to a private temporary file and reads it
    with :func:`deepscope.models.load_checkpoint` (``torch.load(weights_only=True)``, no
    pickle), exactly as a local run reads the file. Workers need no shared file system.

    Attributes
    ----------
    name : str
        File name (for messages).
    data : bytes
        The file's content.
    sha256 : str
        Its hash, checked before loading.
    allow_custom : bool
        Passed to ``load_checkpoint`` (custom architectures import code: trusted files only).
    """

    name: str
    data: bytes = field(repr=False)
    sha256: str
    allow_custom: bool = False

    @classmethod
    def read(cls, path: PathType, *, allow_custom: bool = False) -> ModelFile:
        """Read ``path``; the checkpoint is also loaded once here so a bad file fails early."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"model file {path} does not exist")
        load_checkpoint(path, allow_custom=allow_custom)
        data = path.read_bytes()
        return cls(path.name, data, hashlib.sha256(data).hexdigest(), allow_custom)

    def load(self) -> Checkpoint:
        """The checkpoint, loaded from the shipped bytes with the safe loader."""
        if hashlib.sha256(self.data).hexdigest() != self.sha256:
            raise CheckpointError(f"{self.name}: the bytes received by the worker do not match "
                                  "the sha256 of the file sent")
        with tempfile.TemporaryDirectory(prefix="deepscope-model-") as tmp:
            path = Path(tmp) / self.name
            path.write_bytes(self.data)
            return load_checkpoint(path, allow_custom=self.allow_custom)


def as_model_file(model: Any) -> ModelFile | None:
    """``None``, a :class:`ModelFile`, or a path read into one."""
    if model is None or isinstance(model, ModelFile):
        return model
    if isinstance(model, str | Path):
        return ModelFile.read(model)
    raise InputError(f"model must be a checkpoint path or None, got {type(model).__name__}")


class Job(ABC):
    """One technique over shards of the inputs (see the module docstring)."""

    kind: ClassVar[str] = ""

    def align(self) -> int:
        """Shard sizes are rounded up to a multiple of this (the technique's batch size)."""
        return 1

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """JSON-able identity of the run: two runs with equal fingerprints share shards."""

    def setup(self) -> Any:
        """Prepare on the worker (once per worker); the result is passed to :meth:`run`."""
        return None

    @abstractmethod
    def run(self, state: Any, index: int, start: int, arrays: dict[str, np.ndarray]) -> Any:
        """Process shard ``index`` (inputs ``start..``): ``arrays`` are its rows."""

    @abstractmethod
    def save(self, result: Any, path: Path) -> None:
        """Write one shard's result to ``path`` atomically, refusing an existing file."""

    @abstractmethod
    def load(self, path: Path) -> Any:
        """Read a shard written by :meth:`save`."""

    @abstractmethod
    def merge(self, parts: list[Any], seconds: float) -> Any:
        """Join the shards' results, in input order, into what the local call returns."""
