"""Where deepscope keeps datasets and derived caches."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from deepscope._typing import PathType

DATA_ENV = "DEEPSCOPE_DATA"
CACHE_ENV = "DEEPSCOPE_CACHE"


def cache_dir() -> Path:
    """Return deepscope's cache folder for derived, re-creatable files.

    ``$DEEPSCOPE_CACHE`` when that variable is set and non-empty, otherwise
    ``platformdirs.user_cache_dir("deepscope")`` (``~/.cache/deepscope`` on Linux). Derived
    files (decoded image arrays, the built function-start windows) live here rather than in the
    data folder, because the data folder may be read-only (it is on CI).
    """
    value = os.environ.get(CACHE_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_cache_dir("deepscope"))


def data_dir() -> Path:
    """Return the folder that holds the dataset files.

    Returns
    -------
    pathlib.Path
        ``$DEEPSCOPE_DATA`` when that variable is set and non-empty, otherwise
        ``<cache dir>/data`` (:func:`cache_dir`, e.g. ``~/.cache/deepscope/data``). The folder
        is not created here; downloads create it when needed.
    """
    value = os.environ.get(DATA_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    return cache_dir() / "data"


def resolve_root(root: PathType | None) -> Path:
    """``root`` as a :class:`~pathlib.Path`, or :func:`data_dir` when it is ``None``."""
    if root is None:
        return data_dir()
    return Path(os.fspath(root)).expanduser()
