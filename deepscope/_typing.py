"""Type aliases shared across deepscope."""

from __future__ import annotations

from os import PathLike

PathType = str | PathLike[str]
