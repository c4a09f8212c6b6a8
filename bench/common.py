"""Set-up shared by every benchmark: threads, paths, logging, atomic result files."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CACHE = ROOT / ".cache"  # git-ignored


def set_threads(n: int | None = None) -> int:
    """Pin torch's intra-op threads (default ``$DEEPSCOPE_THREADS`` or 2); return the number."""
    n = int(n if n is not None else os.environ.get("DEEPSCOPE_THREADS", "2"))
    torch.set_num_threads(n)
    return n


def require_data() -> Path:
    """The data folder (``$DEEPSCOPE_DATA``); exit with one line when it is not set."""
    value = os.environ.get("DEEPSCOPE_DATA", "")
    if not value or not Path(value).is_dir():
        sys.exit("set DEEPSCOPE_DATA to the staged data folder (the Makefile does: make bench)")
    return Path(value)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def logger(log_file: Path | None = None) -> Callable[[str], None]:
    """``log(msg)``: prints ``msg`` prefixed with the seconds since this call (and appends it
    to ``log_file`` when given)."""
    start = time.perf_counter()

    def log(msg: str) -> None:
        line = f"{time.perf_counter() - start:7.0f}s {msg}"
        print(line, flush=True)
        if log_file is not None:
            with open(log_file, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    return log


def machine() -> str:
    """One line describing where the benchmark ran (for the result tables)."""
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads")


def command() -> str:
    """The command line that is running, as ``python -m bench.NAME ARGS`` (for the tables)."""
    module = Path(sys.argv[0]).stem
    return " ".join(["python -m", f"bench.{module}", *sys.argv[1:]])
