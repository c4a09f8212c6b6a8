"""The ``function-starts`` dataset: 200-byte windows of real object code, labelled per byte.

``load("function-starts", split)`` gives ``x`` int64 N×200 (byte value + 1, 0 = padding),
``y`` int64 N×200 (1 = a function starts at this byte) and ``groups`` (the source archive of
each window); ``info`` has ``vocab_size`` = 257 (ids 0..256), ``max_length`` = 200 and the
build's folder name. How the windows are made (sources, split by library, dedup, windowing) is in
:mod:`deepscope.data.binary`; what counts as code and as a start is in :mod:`deepscope.data.elf`.

Build and cache
    The windows are derived from files of this machine, so they are built once (:func:`build`,
    ``deepscope data build function-starts``) and cached in
    ``<cache dir>/function-starts/v1/`` (:func:`deepscope.data._paths.cache_dir`:
    ``$DEEPSCOPE_CACHE`` or ``~/.cache/deepscope``; the data folder may be read-only). A build
    is written to a fresh folder under ``builds/`` (arrays ``train.npz``, ``test.npz`` and
    ``manifest.json``), then ``current.json`` is switched to it by an atomic rename, so a
    failed or interrupted build leaves the previous one untouched and nothing half-written.
    :func:`load` builds from the default sources when nothing is built yet.

Manifest and changed sources
    ``manifest.json`` records every source's path, size and sha256, its split and what it
    yielded, the rules' parameters, the per-split sizes (archives, windows, functions, bytes)
    and how long the build took. The same sources give byte-identical arrays. Before reading,
    :func:`load` re-hashes the sources: when one changed or vanished it raises
    :class:`~deepscope.errors.DataCorruptError` naming it and asking for a rebuild (the splits
    would change; a silent rebuild could mix a model's training windows into its test split).
    ``deepscope data verify function-starts`` lists each source as ok / changed / missing, and
    default-folder archives added after the build as ``new``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from deepscope._atomic import atomic_write
from deepscope.data import _paths, binary
from deepscope.data.catalog import DatasetSpec, RawSplit
from deepscope.data.download import FetchOptions
from deepscope.data.integrity import FileSpec, FileStatus, sha256_file
from deepscope.errors import DataCorruptError, InputError

NAME = "function-starts"
FORMAT = "v1"
_ARRAYS = ("bytes", "length", "labels", "group", "group_names")


def cache_folder() -> Path:
    """``<cache dir>/function-starts/v1``: where builds and the ``current.json`` pointer live."""
    return _paths.cache_dir() / NAME / FORMAT


def current_build() -> tuple[Path, dict[str, Any]] | None:
    """The folder and manifest of the current build, or ``None`` when nothing is built."""
    pointer = cache_folder() / "current.json"
    try:
        folder = cache_folder() / "builds" / json.loads(pointer.read_text("utf-8"))["build"]
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataCorruptError(
            f"{NAME}: the cached build in {cache_folder()} is unreadable ({exc}); run "
            "`deepscope data build function-starts` to rebuild it"
        ) from exc
    return folder, manifest


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "unknown"


def _read_all(
    sources: Sequence[binary.SourceFile], strict: bool, progress: bool
) -> list[binary.SourceCode]:
    codes = []
    total = sum(s.size for s in sources)
    with tqdm(total=total, unit="B", unit_scale=True, desc="reading object code",
              disable=not progress, leave=False) as bar:
        for source in sources:
            bar.set_postfix_str(source.name[-30:], refresh=False)
            codes.append(binary.read_source(source, strict=strict))
            bar.update(source.size)
    return codes


def _manifest(
    codes: Sequence[binary.SourceCode], split_of: dict[str, str], stats: dict, per_source: dict,
    rules: dict[str, Any],
) -> dict[str, Any]:
    entries = []
    for code in codes:
        s = code.source
        entries.append({
            "name": s.name, "path": str(s.path), "size": s.size, "sha256": s.sha256,
            "split": split_of[s.name], "status": code.status,
            "objects": len(code.objects), "stripped_members": code.stripped_members,
            "machines": sorted(code.machines), **per_source.get(s.name, {}),
        })
    return {"dataset": NAME, "format": FORMAT, **rules, "splits": stats, "sources": entries}


def build(
    sources: Sequence[os.PathLike | str] | None = None,
    *,
    held_out: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the function-start windows and make them the current ``function-starts`` dataset.

    Parameters
    ----------
    sources : sequence of path, optional
        ELF files, ``.a`` archives or folders of them; default every ``lib*.a`` of the
        machine's multiarch library folder. Each must be unstripped and hold code.
    held_out : sequence of str, optional
        Source names (file names; paths relative to a given folder) for the test split; default
        :data:`~deepscope.data.binary.HELD_OUT` for the default sources, a seeded 20 % draw of
        the user's sources otherwise (see :mod:`deepscope.data.binary`).
    seed : int
        Seed of that draw.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The manifest (also saved as ``manifest.json``), with ``build_seconds``.

    Raises
    ------
    DataMissingError
        A source does not exist, a folder holds no ELF file or archive, or no default sources.
    DataCorruptError
        A user's source is not ELF/ar, truncated, stripped or without code; nothing is written.
    """
    start = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative int, got {seed!r}")
    default = sources is None
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    aliases: dict[str, str] = {}
    if default:
        found, aliases = binary.default_sources()
    else:
        found = binary.user_sources(sources or [])
    codes = _read_all(found, strict=not default, progress=progress)
    if not any(c.status == "used" for c in codes):
        raise DataCorruptError(f"{NAME}: none of the {len(codes)} source files holds code with "
                               "function symbols")
    names = [c.source.name for c in codes]
    builtin_list = default and held_out is None
    split_of = binary.assign_splits(
        names, held_out=binary.HELD_OUT if builtin_list else held_out, seed=seed,
        strict=not builtin_list)
    arrays, stats, per_source = binary.assemble(codes, split_of)
    rules = {
        "window": binary.WINDOW, "stride": binary.WINDOW, "default_sources": default,
        "source_dir": str(binary.default_source_dir()) if default else None,
        "held_out": sorted(n for n, s in split_of.items() if s == "test"),
        "split_rule": "held-out list" if default or held_out is not None
        else f"seeded by file (seed {seed}, test fraction {binary.TEST_FRACTION})",
        "pyelftools": _version("pyelftools"), "aliases": aliases,
    }
    manifest = _manifest(codes, split_of, stats, per_source, rules)
    manifest["build_seconds"] = round(time.perf_counter() - start, 2)
    manifest["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _write(arrays, manifest)
    return manifest


def _write(arrays: dict[str, dict[str, np.ndarray]], manifest: dict[str, Any]) -> None:
    builds = cache_folder() / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=builds, prefix=".build-", suffix=".tmp"))
    try:
        for split, arrs in arrays.items():
            with atomic_write(tmp / f"{split}.npz") as fh:
                np.savez(fh, **arrs)
        with atomic_write(tmp / "manifest.json", binary=False) as fh:
            json.dump(manifest, fh, indent=1)
        name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{tmp.name[7:-4]}"
        os.replace(tmp, builds / name)
        with atomic_write(cache_folder() / "current.json", binary=False) as fh:
            json.dump({"build": name}, fh)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in builds.iterdir():  # older builds are no longer pointed at
        if old.name != name and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)


def source_statuses(manifest: dict[str, Any]) -> list[FileStatus]:
    """Each recorded source as ``ok`` / ``changed`` / ``missing``, plus ``new`` default archives."""
    out = []
    for entry in manifest["sources"]:
        path = Path(entry["path"])
        if not path.is_file():
            out.append(FileStatus(NAME, path, "missing", entry["sha256"], None))
            continue
        actual = sha256_file(path)
        status = "ok" if actual == entry["sha256"] else "changed"
        out.append(FileStatus(NAME, path, status, entry["sha256"], actual))
    if manifest.get("default_sources") and manifest.get("source_dir"):
        known = {e["path"] for e in manifest["sources"]}
        aliases = manifest.get("aliases", {})
        for path in sorted(Path(manifest["source_dir"]).glob("lib*.a")):
            if path.is_file() and str(path) not in known and path.name not in aliases:
                out.append(FileStatus(NAME, path, "new", "", sha256_file(path)))
    return out


def _load_split(folder: Path, split: str) -> RawSplit:
    path = folder / f"{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            a = {k: npz[k] for k in _ARRAYS}
    except (OSError, ValueError, KeyError) as exc:
        raise DataCorruptError(f"{NAME}: cached {path} is unreadable ({exc}); run "
                               "`deepscope data build function-starts`") from exc
    x = a["bytes"].astype(np.int64) + 1
    x[np.arange(binary.WINDOW)[None, :] >= a["length"][:, None]] = 0
    groups = a["group_names"][a["group"]] if len(a["group"]) else np.array([], dtype=str)
    return RawSplit(x=x, y=a["labels"].astype(np.int64), groups=groups,
                    info={"window": binary.WINDOW, "max_length": binary.WINDOW,
                          "vocab_size": 257, "build": folder.name})


class FunctionStarts(DatasetSpec):
    """Function starts in real object code (see :mod:`deepscope.data.function_starts`).

    The data folder (``root``) is not used: the sources are the machine's libraries or those
    given to :func:`build`, and the windows live in :func:`cache_folder`.
    """

    name = NAME
    classes = ("not-start", "function-start")
    description = ("function starts in 200-byte windows of the machine's static libraries "
                   "(per-byte labels; built locally)")
    modality = "sequence"
    buildable = True

    def files(self) -> tuple[FileSpec, ...]:
        return ()

    def status(self, root: Path) -> list[FileStatus]:
        try:
            current = current_build()
        except DataCorruptError:  # an unreadable cache is reported, not raised, by verify
            return [FileStatus(NAME, cache_folder() / "current.json", "corrupt", "", None)]
        if current is None:
            return [FileStatus(NAME, cache_folder() / "current.json", "missing", "", None)]
        return source_statuses(current[1])

    def build(self, **kwargs: Any) -> dict[str, Any]:
        return build(**kwargs)

    def build_info(self) -> dict[str, Any] | None:
        try:
            current = current_build()
        except DataCorruptError:
            return None
        if current is None:
            return None
        return {k: v for k, v in current[1].items() if k != "sources"}

    def read(self, root: Path, splits: Sequence[str], options: FetchOptions) -> list[RawSplit]:
        current = current_build()
        if current is None:
            build(progress=options.progress)
            current = current_build()
            assert current is not None
        folder, manifest = current
        bad = [s for s in source_statuses(manifest) if s.status in ("changed", "missing")]
        if bad:
            listed = ", ".join(f"{s.path} ({s.status})" for s in bad[:5])
            how = "" if manifest.get("default_sources") else " --sources <your sources>"
            raise DataCorruptError(
                f"{NAME}: {len(bad)} source file(s) changed since the dataset was built: "
                f"{listed}. Run `deepscope data build function-starts{how}` to rebuild it (its "
                "splits will change; retrain models trained on the old build)"
            )
        return [_load_split(folder, split) for split in splits]


FUNCTION_STARTS = FunctionStarts()
