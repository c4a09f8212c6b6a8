"""The dataset registry and the public :func:`load`, :func:`names` and :func:`verify`.

Each dataset is a :class:`DatasetSpec` registered in :data:`DATASETS`; :func:`names` and the
command line's choices come from that registry. A spec says its :attr:`~DatasetSpec.modality`
(``"image"`` or ``"sequence"``); datasets derived from local files by a build step (function
starts) also implement :meth:`~DatasetSpec.build` and report their sources in
:meth:`~DatasetSpec.status`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope._typing import PathType
from deepscope.data._paths import resolve_root
from deepscope.data.dataset import Dataset
from deepscope.data.download import FetchOptions
from deepscope.data.integrity import FileSpec, FileStatus, file_status
from deepscope.errors import InputError
from deepscope.registry import Registry

SPLITS = ("train", "test", "all")


@dataclass(frozen=True)
class RawSplit:
    """One split as loaded from disk, before conversion to a :class:`Dataset`.

    ``x`` is uint8 N×C×H×W (images) or int64 N×T (sequences), ``y`` integer labels (N, or N×T
    per position), ``extras`` per-sample numpy arrays; ``groups``/``texts`` per-sample strings
    and ``vocab`` the vocabulary of a text dataset (see :class:`Dataset`).
    """

    x: np.ndarray
    y: np.ndarray
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    groups: Sequence[str] | np.ndarray | None = None
    texts: Sequence[str] | None = None
    vocab: Any = None


class DatasetSpec(ABC):
    """How to find, check and read one dataset.

    Subclasses set :attr:`name` and :attr:`classes`, list every known file in :meth:`files`, and
    read the ``"train"`` / ``"test"`` splits in :meth:`read`.
    """

    name: str
    classes: tuple[str, ...]
    description: str = ""
    #: ``"image"`` (x uint8 N×C×H×W, scaled to float32 [0, 1]) or ``"sequence"`` (x int64 N×T).
    modality: str = "image"
    #: True when the dataset is derived by :meth:`build` (``deepscope data build NAME``).
    buildable: bool = False

    @abstractmethod
    def files(self) -> tuple[FileSpec, ...]:
        """Every file this dataset knows about (required, optional and alternative ones)."""

    @abstractmethod
    def read(self, root: Path, splits: Sequence[str], options: FetchOptions) -> list[RawSplit]:
        """Fetch/check the needed files under ``root`` and read ``splits`` (train/test)."""

    def status(self, root: Path) -> list[FileStatus]:
        """Integrity of every known file (default: each of :meth:`files` against its pin)."""
        return [file_status(self.name, f, root) for f in self.files()]

    def build_info(self) -> dict[str, Any] | None:
        """Summary of the current build of a :attr:`buildable` dataset (``None``: not built)."""
        return None

    def build(self, **kwargs: Any) -> Any:
        """Derive the dataset's cached arrays (only for :attr:`buildable` datasets)."""
        raise InputError(f"{self.name} has no build step; it is read from its files directly")


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def names() -> list[str]:
    """Names of the available datasets, e.g. ``["mnist", "fashion-mnist", "cifar10", ...]``."""
    return DATASETS.names()


def _joined(raws: Sequence[RawSplit], attr: str) -> Any:
    parts = [getattr(r, attr) for r in raws]
    if any(p is None for p in parts):
        return None
    if attr == "texts":
        return [t for p in parts for t in p]
    return np.concatenate([np.asarray(p) for p in parts])


def _to_dataset(spec: DatasetSpec, split: str, raws: Sequence[RawSplit]) -> Dataset:
    if len(raws) == 1:
        x, y = raws[0].x, raws[0].y
        extras = dict(raws[0].extras)
    else:
        x = np.concatenate([r.x for r in raws])
        y = np.concatenate([r.y for r in raws])
        keys = set.intersection(*(set(r.extras) for r in raws))
        extras = {k: np.concatenate([r.extras[k] for r in raws]) for k in sorted(keys)}
    info: dict[str, Any] = {}
    for raw in raws:
        info.update(raw.info)
    if spec.modality == "image":
        # One float copy, scaled in place: x is float32 in [0, 1].
        inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).div_(255.0)
    else:
        inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))
    return Dataset(
        x=inputs,
        y=torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)),
        classes=spec.classes,
        name=spec.name,
        split=split,
        extras={k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in extras.items()},
        info=info,
        groups=_joined(raws, "groups"),
        texts=_joined(raws, "texts"),
        vocab=raws[0].vocab,
    )


def load(
    name: str,
    split: str = "train",
    *,
    root: PathType | None = None,
    download: bool = True,
    progress: bool = True,
    mirror: str | None = None,
) -> Dataset:
    """Load a dataset split as a :class:`Dataset` on the CPU.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    split : {"train", "test", "all"}
        ``"all"`` is the train split followed by the test split.
    root : path, optional
        Data folder; default :func:`data_dir` (``$DEEPSCOPE_DATA`` or the user cache).
    download : bool
        Download missing files that have an official source (checked against their sha256).
    progress : bool
        Show progress bars for downloads and slow decoding.
    mirror : str, optional
        Base URL laid out like the data folder, used instead of the official sources; default
        ``$DEEPSCOPE_MIRROR``.

    Raises
    ------
    RegistryError
        Unknown dataset name.
    InputError
        Unknown split.
    DataMissingError
        Files are missing and cannot be downloaded; the message lists where to put them.
    DataCorruptError
        A file fails its sha256 pin or cannot be parsed.
    """
    spec = DATASETS.get(name)
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} for {name}; choose one of: {', '.join(SPLITS)}")
    parts = ("train", "test") if split == "all" else (split,)
    options = FetchOptions(download=bool(download), mirror=mirror, progress=bool(progress))
    raws = spec.read(resolve_root(root), parts, options)
    return _to_dataset(spec, split, raws)


def verify(name: str | None = None, *, root: PathType | None = None) -> list[FileStatus]:
    """Check every known file of one dataset (or of all) against its sha256 pin.

    Nothing is downloaded. Each :class:`FileStatus` says ``"ok"``, ``"missing"`` or
    ``"corrupt"``; some files are optional or alternatives (see each dataset's docs), so
    ``"missing"`` is not always a problem. A built dataset (function starts) reports each source
    file of its build as ``"ok"``, ``"changed"`` (sha256 differs from the build's manifest),
    ``"missing"`` or ``"new"`` (a default source that appeared after the build), or, before
    the first build, its cache pointer as ``"missing"``.
    """
    chosen = [DATASETS.get(name)] if name is not None else [DATASETS.get(n) for n in names()]
    base = resolve_root(root)
    return [status for spec in chosen for status in spec.status(base)]


def build(name: str, **kwargs: Any) -> Any:
    """Build (or rebuild) the cached arrays of a derived dataset, e.g. ``"function-starts"``.

    Keyword arguments go to the dataset's :meth:`DatasetSpec.build` (for function starts:
    ``sources``, ``held_out``, ``seed``, ``progress``). Datasets read straight from their files
    raise :class:`InputError`.
    """
    return DATASETS.get(name).build(**kwargs)
