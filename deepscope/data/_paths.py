"""Where deepscope keeps datasets and derived caches."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from deepscope._typing import PathType

DATA_ENV = "DEEPSCOPE_DATA"


def cache_dir() -> Path:
    """Return deepscope's user cache folder (``platformdirs.user_cache_dir("deepscope")``).

    Derived, re-creatable files (such as decoded image arrays) live here, because the data folder
    may be read-only.
    """
    return Path(platformdirs.user_cache_dir("deepscope"))


def data_dir() -> Path:
    """Return the folder that holds the dataset files.

    Returns
    -------
    pathlib.Path
        ``$DEEPSCOPE_DATA`` when that variable is set and non-empty, otherwise
        ``<user cache dir>/data`` (e.g. ``~/.cache/deepscope/data`` on Linux). The folder is not
        created here; downloads create it when needed.
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
