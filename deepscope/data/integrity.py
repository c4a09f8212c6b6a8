"""File pins (sha256) and integrity checks of dataset files.

Hashing a file costs a read of the whole file, so the result is cached in-process per
``(resolved path, size, mtime_ns)``: a file that is replaced or edited is hashed again.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepscope.errors import DataCorruptError

_CHUNK = 1 << 20
_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


@dataclass(frozen=True)
class FileSpec:
    """One known dataset file.

    Parameters
    ----------
    relpath : str
        Path inside the data folder, with ``/`` separators
        (e.g. ``"mnist/t10k-labels-idx1-ubyte.gz"``).
    sha256 : str
        Pinned sha256 of the file (lower-case hex).
    urls : tuple of str
        Official download locations, tried in order. Empty when the file has no official source.
    size : int or None
        Expected size in bytes, when known.
    note : str
        Where to get the file by hand (shown when it is missing).
    """

    relpath: str
    sha256: str
    urls: tuple[str, ...] = ()
    size: int | None = None
    note: str = ""

    def path(self, root: Path) -> Path:
        """Absolute location of this file under the data folder ``root``."""
        return Path(root, *self.relpath.split("/"))


@dataclass(frozen=True)
class FileStatus:
    """The integrity status of one dataset file, as reported by :func:`deepscope.data.verify`.

    Attributes
    ----------
    dataset : str
        Dataset name.
    path : pathlib.Path
        Where the file is expected.
    status : str
        ``"ok"`` (present, sha256 matches), ``"missing"`` or ``"corrupt"`` (sha256 differs).
    expected_sha256 : str
        The pinned hash.
    actual_sha256 : str or None
        The file's hash, ``None`` when missing.
    """

    dataset: str
    path: Path
    status: str
    expected_sha256: str
    actual_sha256: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "dataset": self.dataset,
            "path": str(self.path),
            "status": self.status,
            "expected_sha256": self.expected_sha256,
            "actual_sha256": self.actual_sha256,
        }


def _key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def sha256_file(path: Path) -> str:
    """Return the sha256 (hex) of ``path``, cached per (path, size, mtime) in this process."""
    path = Path(path)
    key = _key(path)
    with _HASH_LOCK:
        cached = _HASH_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with _HASH_LOCK:
        _HASH_CACHE[key] = value
    return value


def remember_hash(path: Path, sha256: str) -> None:
    """Record a hash computed elsewhere (e.g. while downloading) for ``path`` as it is now."""
    with _HASH_LOCK:
        _HASH_CACHE[_key(Path(path))] = sha256


def file_status(dataset: str, spec: FileSpec, root: Path) -> FileStatus:
    """Check one file: missing, corrupt (hash differs) or ok."""
    path = spec.path(root)
    if not path.is_file():
        return FileStatus(dataset, path, "missing", spec.sha256, None)
    actual = sha256_file(path)
    status = "ok" if actual == spec.sha256 else "corrupt"
    return FileStatus(dataset, path, status, spec.sha256, actual)


def check_file(dataset: str, spec: FileSpec, path: Path) -> Path:
    """Raise :class:`DataCorruptError` unless the existing file ``path`` matches its pin."""
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise DataCorruptError(
            f"{dataset}: file {path} is corrupt or not the expected file: sha256 is {actual}, "
            f"expected {spec.sha256}. Delete it (it is downloaded again when a source exists) "
            f"or replace it with a good copy."
        )
    return path
