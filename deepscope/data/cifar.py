"""CIFAR-10 from the official python batches or from the staged JPEG copy.

Two sources, tried in this order:

1. ``cifar10/cifar-10-python.tar.gz``, the official archive (downloadable). Pinned by sha256
   ``6d958be0…c001ce`` (170,498,071 bytes); that hash is published together with the official
   md5 ``c58f30108f718f92721af3b95e74349a`` (e.g. by Keras' ``cifar10.load_data``).
2. ``cifar10-jpeg/cifar10_jpeg.tar.gz``, a third party's lossy JPEG re-encoding (no official
   source, not pixel-exact). Decoding its 60,000 JPEGs is slow, so the decoded uint8 arrays are
   cached as ``.npy`` under ``<user cache dir>/cifar10-jpeg/<sha256>/``. Within a split the
   images are ordered by class, then by file number (the original order across classes is lost).
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import re
import shutil
import tarfile
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from deepscope.data import _paths
from deepscope.data.catalog import DatasetSpec, RawSplit
from deepscope.data.download import FetchOptions, ensure_files
from deepscope.data.integrity import FileSpec
from deepscope.errors import DataCorruptError, DataMissingError

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_JPEG_MEMBER = re.compile(r"^(?:.*/)?(train|test)/([^/]+)/(\d+)\.jpe?g$", re.IGNORECASE)
_CACHE_VERSION = "v1"

# The only globals a CIFAR batch pickle needs: numpy's array reconstructor, ndarray and dtype
# (and ``_codecs.encode``, which protocol-2 pickles written by Python 3 use for bytes).
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that can build dicts, lists, str/bytes, ints and uint8 arrays, nothing else."""

    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataCorruptError(
                f"{self._source}: refusing to unpickle {module}.{name}; a CIFAR batch only "
                "holds arrays, lists and strings"
            ) from None


def _parse_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(data, source).load()
    except DataCorruptError:
        raise
    except Exception as exc:  # any malformed pickle
        raise DataCorruptError(f"{source}: unreadable CIFAR batch ({exc})") from exc
    if not isinstance(batch, dict):
        raise DataCorruptError(f"{source}: a CIFAR batch must be a dict")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    images, labels = batch.get("data"), batch.get("labels")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
            or images.shape[1] != 3 * 32 * 32:
        raise DataCorruptError(f"{source}: 'data' must be a uint8 array of shape (N, 3072)")
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise DataCorruptError(f"{source}: 'labels' must hold one integer per image")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataCorruptError(f"{source}: labels out of range 0-9")
    return images.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_python_archive(path: Path, splits: Sequence[str]) -> list[RawSplit]:
    """Read splits from the official ``cifar-10-python.tar.gz`` without extracting it.

    Call this only after the archive's sha256 matched its pin. The batches are pickles; they
    are read with a restricted unpickler that refuses every global except numpy's array
    reconstruction, so even a tampered archive cannot run code.
    """
    wanted = {name for split in splits for name in _BATCHES[split]}
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in found:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    found[base] = _parse_batch(fh.read(), f"{path}:{member.name}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataCorruptError(f"{path}: unreadable archive ({exc})") from exc
    absent = sorted(wanted - set(found))
    if absent:
        raise DataCorruptError(f"{path}: archive lacks batch file(s) {', '.join(absent)}")
    raws = []
    for split in splits:
        parts = [found[name] for name in _BATCHES[split]]
        raws.append(
            RawSplit(
                x=np.concatenate([p[0] for p in parts]),
                y=np.concatenate([p[1] for p in parts]),
                info={"source": "cifar-10-python"},
            )
        )
    return raws


def decode_jpeg_archive(path: Path, *, progress: bool = True) -> dict[str, tuple[np.ndarray, ...]]:
    """Decode every ``{train,test}/<class>/NNNN.jpg`` of a tar.gz straight from the archive.

    Returns
    -------
    dict
        ``split -> (x uint8 N×3×32×32, y int64 N)``, ordered by class then file number.

    Raises
    ------
    DataCorruptError
        Unreadable archive or image, an unknown class folder, or an image that is not 32×32.
    """
    records: dict[str, list[tuple[int, int, np.ndarray]]] = {"train": [], "test": []}
    index = {c: i for i, c in enumerate(CLASSES)}
    try:
        with tarfile.open(path, "r:gz") as tar, tqdm(
            desc="decoding CIFAR-10 JPEGs", unit="img", disable=not progress, leave=False
        ) as bar:
            for member in tar:
                match = _JPEG_MEMBER.match(member.name)
                if not member.isfile() or match is None:
                    continue
                split, cls, number = match.groups()
                if cls not in index:
                    raise DataCorruptError(f"{path}: unknown class folder in {member.name}")
                fh = tar.extractfile(member)
                assert fh is not None
                try:
                    with Image.open(io.BytesIO(fh.read())) as img:
                        pixels = np.asarray(img.convert("RGB"))
                except (OSError, ValueError, Image.DecompressionBombError) as exc:
                    raise DataCorruptError(f"{path}: cannot decode {member.name} ({exc})") from exc
                if pixels.shape != (32, 32, 3):
                    raise DataCorruptError(
                        f"{path}: {member.name} is {pixels.shape[1]}×{pixels.shape[0]}, "
                        "expected 32×32"
                    )
                records[split.lower()].append((index[cls], int(number), pixels))
                bar.update()
    except (tarfile.TarError, EOFError) as exc:
        raise DataCorruptError(f"{path}: unreadable archive ({exc})") from exc
    if not any(records.values()):
        raise DataCorruptError(f"{path}: no train/<class>/NNNN.jpg images found")
    out = {}
    for split, items in records.items():
        items.sort(key=lambda item: item[:2])
        x = np.stack([p for _, _, p in items]) if items else np.zeros((0, 32, 32, 3), np.uint8)
        out[split] = (
            np.ascontiguousarray(x.transpose(0, 3, 1, 2)),
            np.array([c for c, _, _ in items], dtype=np.int64),
        )
    return out


def _cache_folder(sha256: str) -> Path:
    return _paths.cache_dir() / "cifar10-jpeg" / f"{sha256}-{_CACHE_VERSION}"


def _load_cache(folder: Path) -> dict[str, tuple[np.ndarray, ...]] | None:
    try:
        out = {}
        for split in ("train", "test"):
            x = np.load(folder / f"{split}_x.npy", allow_pickle=False)
            y = np.load(folder / f"{split}_y.npy", allow_pickle=False)
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (3, 32, 32) \
                    or y.shape != (len(x),):
                return None
            out[split] = (x, y.astype(np.int64))
        return out
    except (OSError, ValueError):
        return None


def _save_cache(folder: Path, arrays: dict[str, tuple[np.ndarray, ...]]) -> None:
    """Write the arrays into a temp folder, then rename it into place (atomic)."""
    tmp: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
        for split, (x, y) in arrays.items():
            np.save(tmp / f"{split}_x.npy", x)
            np.save(tmp / f"{split}_y.npy", y)
        os.replace(tmp, folder)
        tmp = None
    except OSError as exc:  # read-only cache, a concurrent writer won, disk full, ...
        if not folder.is_dir():
            warnings.warn(f"could not cache decoded CIFAR-10 JPEGs in {folder}: {exc}",
                          stacklevel=3)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def read_jpeg_archive(
    path: Path, sha256: str, splits: Sequence[str], *, progress: bool = True
) -> list[RawSplit]:
    """Read splits from the JPEG tar.gz, through the decoded-array cache keyed by ``sha256``."""
    folder = _cache_folder(sha256)
    arrays = _load_cache(folder)
    if arrays is None:
        arrays = decode_jpeg_archive(path, progress=progress)
        _save_cache(folder, arrays)
    info = {"source": "cifar10-jpeg", "note": "lossy JPEG re-encoding, not pixel-exact"}
    return [RawSplit(x=arrays[s][0], y=arrays[s][1], info=info) for s in splits]


class Cifar10(DatasetSpec):
    """CIFAR-10: the official python batches when present, else the staged JPEG copy."""

    name = "cifar10"
    classes = CLASSES
    description = "CIFAR-10, 32×32 RGB, 50,000 train / 10,000 test"

    def __init__(self) -> None:
        self.python_file = FileSpec(
            relpath="cifar10/cifar-10-python.tar.gz",
            sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
            size=170_498_071,
        )
        self.jpeg_file = FileSpec(
            relpath="cifar10-jpeg/cifar10_jpeg.tar.gz",
            sha256="efac85c8ed52f4ead1e1f1b670d8dcf435d551fccebdd8b6365e0a01a504f3a4",
            size=19_434_830,
            note="an alternative to the python archive; copy it from the staged deepscope data",
        )

    def files(self) -> tuple[FileSpec, ...]:
        return (self.python_file, self.jpeg_file)

    def read(self, root: Path, splits: Sequence[str], options: FetchOptions) -> list[RawSplit]:
        if self.python_file.path(root).is_file() or not self.jpeg_file.path(root).is_file():
            try:
                paths = ensure_files(self.name, [self.python_file], root, options)
            except DataMissingError as exc:
                raise DataMissingError(
                    f"{exc}\nAlternatively put the lossy JPEG copy at "
                    f"{self.jpeg_file.path(root)} (sha256 {self.jpeg_file.sha256})."
                ) from None
            path = paths[self.python_file.relpath]
            assert path is not None
            return read_python_archive(path, splits)  # sha256 verified above
        paths = ensure_files(self.name, [self.jpeg_file], root, options)
        path = paths[self.jpeg_file.relpath]
        assert path is not None
        return read_jpeg_archive(path, self.jpeg_file.sha256, splits, progress=options.progress)


CIFAR10 = Cifar10()
