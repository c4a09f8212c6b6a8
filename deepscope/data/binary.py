"""From object files to labelled byte windows: sources, the split by library, dedup, windows.

Sources
    By default every ``lib*.a`` of the machine's multiarch library folder (where
    ``gcc -print-file-name=libc.a`` points, e.g. ``/usr/lib/x86_64-linux-gnu``), the static
    libraries of Debian's ``-dev`` packages. Files there that are not archives (linker scripts
    such as ``libm.a``) or hold no code or no symbols are recorded and skipped. Or the user's
    sources: ELF files (objects, executables, shared libraries) and ``.a`` archives, given one by
    one or as folders (searched recursively; files that are neither ELF nor ``ar`` are ignored
    there). A user's source must be unstripped and hold code, else the build stops with an error
    naming it.

Split, by source (a whole library is in one split)
    Default sources: the archives named in :data:`HELD_OUT` form the test split, all others the
    training split. User sources: the names in ``held_out`` when given; otherwise the sources
    sorted by name are permuted with ``numpy.random.default_rng(seed)`` and the first
    ``max(1, round(0.2 · n))`` go to test (with a single source the test split is empty).

Dedup, by byte content, so that no code is shared between the splits
    Code sections are visited train first, then test, each source in name order and each
    object in archive order. A section whose bytes equal an earlier section of the same split
    is dropped (byte-identical sections count once), and a test section whose bytes occur in the
    training split is dropped. Then every test function whose bytes (from its start to the next
    start or the section's end, alignment padding included) equal a training function's is cut
    out of its test section, the rest joined up: no function is in both splits. The manifest
    counts what each rule removed.

Windows (LEMNA, Guo et al. CCS'18; Shin et al. USENIX Security'15)
    The kept code sections of one source are concatenated in that order, with no filler between
    them, like the ``.text`` of a linked library. This stream is cut into consecutive windows of
    :data:`WINDOW` = 200 bytes with stride 200 (no overlap, every byte in exactly one window);
    the last window of a source is padded with zeros. Inputs are ``byte + 1`` (1..256), 0 =
    padding; labels are 1 where a function starts (see :mod:`deepscope.data.elf`), 0 elsewhere
    and at padding.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sysconfig
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepscope.data import ar, elf
from deepscope.errors import DataCorruptError, DataMissingError, InputError

WINDOW = 200
#: Libraries held out as the test split of the default build (file names in the library folder).
HELD_OUT = (
    "libsqlite3.a", "libxml2.a", "libgmp.a", "libpng16.a", "libz.a", "libexpat.a", "libbz2.a",
    "liblzma.a", "libyaml.a", "libffi.a",
)
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class SourceFile:
    """One source: its name in the dataset (the window's group), its path, size and sha256."""

    name: str
    path: Path
    size: int
    sha256: str


@dataclass
class SourceCode:
    """What one source yielded: its objects, or why it was skipped."""

    source: SourceFile
    objects: list[elf.ObjectCode] = field(default_factory=list)
    status: str = "used"
    stripped_members: int = 0
    machines: set[str] = field(default_factory=set)


def default_source_dir() -> Path:
    """The multiarch library folder (``/usr/lib/<multiarch>``), where ``libc.a`` lives."""
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch and Path("/usr/lib", multiarch, "libc.a").is_file():
        return Path("/usr/lib", multiarch)
    try:
        out = subprocess.run(["gcc", "-print-file-name=libc.a"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if out and Path(out).is_file():
        return Path(out).resolve().parent
    raise DataMissingError(
        "function-starts: no static libraries found (neither /usr/lib/<multiarch>/libc.a nor "
        "`gcc -print-file-name=libc.a`); install libc6-dev (and other -dev packages) or pass "
        "sources= / --sources with unstripped ELF files or .a archives"
    )


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(8)


def _hashed(name: str, path: Path) -> SourceFile:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return SourceFile(name, path, path.stat().st_size, digest)


def default_sources(folder: Path | None = None) -> tuple[list[SourceFile], dict[str, str]]:
    """Every ``lib*.a`` file of ``folder`` (default :func:`default_source_dir`), by name.

    A symbolic link to another ``lib*.a`` of the folder (``libpng.a -> libpng16.a``) is the
    same library: it is left out and returned in the second value, ``{link: target}``.
    """
    folder = default_source_dir() if folder is None else folder
    paths = [p for p in sorted(folder.glob("lib*.a")) if p.is_file()]
    real = {p.resolve(): p.name for p in paths if not p.is_symlink()}
    aliases = {p.name: real[p.resolve()] for p in paths
               if p.is_symlink() and p.resolve() in real}
    return [_hashed(p.name, p) for p in paths if p.name not in aliases], aliases


def _scan(folder: Path) -> list[Path]:
    found = []
    for dirpath, _, files in sorted(os.walk(folder)):
        for fname in sorted(files):
            path = Path(dirpath, fname)
            if path.is_file() and not path.is_symlink():
                head = _head(path)
                if elf.is_elf(head) or ar.is_archive(head):
                    found.append(path)
    return found


def user_sources(paths: Iterable[os.PathLike | str]) -> list[SourceFile]:
    """The sources named by the user: files, or folders searched recursively.

    Raises
    ------
    InputError
        No paths given.
    DataMissingError
        A path does not exist, or a folder holds no ELF file or ``ar`` archive.
    DataCorruptError
        A file given by name is neither an ELF file nor an ``ar`` archive.
    """
    entries: list[tuple[str, Path]] = []
    paths = [Path(os.fspath(p)).expanduser() for p in paths]
    if not paths:
        raise InputError("sources must name at least one file or folder")
    for path in paths:
        if path.is_dir():
            found = _scan(path)
            if not found:
                raise DataMissingError(
                    f"function-starts: the folder {path} holds no ELF file or .a archive; pass "
                    "a folder of unstripped object files, executables or static libraries"
                )
            entries.extend((p.relative_to(path).as_posix(), p) for p in found)
        elif path.is_file():
            head = _head(path)
            if not (elf.is_elf(head) or ar.is_archive(head)):
                raise DataCorruptError(
                    f"function-starts: {path} is neither an ELF file nor an ar archive; pass "
                    "unstripped object files, executables or .a archives"
                )
            entries.append((path.name, path))
        else:
            raise DataMissingError(f"function-starts: source {path} does not exist")
    names = [n for n, _ in entries]
    if len(set(names)) != len(names):  # same file name in two places: use the full paths
        entries = [(str(p.resolve()), p) for _, p in entries]
    return sorted((_hashed(n, p) for n, p in entries), key=lambda s: s.name)


def read_source(source: SourceFile, *, strict: bool) -> SourceCode:
    """Read the code of one source (an archive's ELF members, or one ELF file).

    With ``strict`` (user sources) a source without usable code raises
    :class:`DataCorruptError` saying why (not ELF, no code, stripped); otherwise it comes back
    with a ``status`` other than ``"used"``.
    """
    blob = source.path.read_bytes()
    out = SourceCode(source)
    if ar.is_archive(blob[:8]):
        blobs = [(f"{source.name}({m.name})", m.data) for m in ar.members(blob, str(source.path))]
    elif elf.is_elf(blob[:8]):
        blobs = [(source.name, blob)]
    else:
        out.status = "not an archive"
        blobs = []
    for name, data in blobs:
        if not elf.is_elf(data):
            continue
        code = elf.read_elf(data, name)
        if not code.sections:
            continue
        if not code.has_symtab:
            out.stripped_members += 1
            continue
        out.machines.add(code.machine)
        out.objects.append(code)
    starts = sum(o.num_starts for o in out.objects)
    if out.status == "used" and not starts:
        out.status = "stripped" if out.stripped_members else "no code"
        if out.objects:
            out.status = "no function symbols"
    if strict and out.status != "used":
        raise DataCorruptError(_refusal(source, out.status))
    return out


def _refusal(source: SourceFile, status: str) -> str:
    why = {
        "stripped": "is stripped: it has code but no symbol table (.symtab), so its function "
                    "starts are unknown; pass an unstripped build (e.g. before `strip`)",
        "no code": "holds no executable code (no SHF_EXECINSTR section)",
        "no function symbols": "has a symbol table but no function (STT_FUNC) symbols in its "
                               "code",
        "not an archive": "is neither an ELF file nor an ar archive",
    }[status]
    return f"function-starts: {source.path} {why}"


def assign_splits(
    names: Sequence[str], *, held_out: Sequence[str] | None, seed: int, strict: bool = True
) -> dict[str, str]:
    """``name -> "train" | "test"`` following the split rule of this module's docstring.

    With ``strict`` every ``held_out`` name must be a source (a user's list); the default list
    :data:`HELD_OUT` is not strict, since a machine may lack some of those libraries.
    """
    if held_out is not None:
        unknown = sorted(set(held_out) - set(names))
        if unknown and strict:
            raise InputError(
                f"held-out name(s) {', '.join(unknown)} match no source; source names are "
                f"{', '.join(sorted(names)[:8])}{' ...' if len(names) > 8 else ''}"
            )
        test = set(held_out)
        if set(names) <= test:
            raise InputError("every source is held out for the test split; keep one to train on")
    else:
        ordered = sorted(names)
        n_test = max(1, round(TEST_FRACTION * len(ordered))) if len(ordered) > 1 else 0
        perm = np.random.default_rng(seed).permutation(len(ordered))
        test = {ordered[i] for i in perm[:n_test]}
    return {n: ("test" if n in test else "train") for n in names}


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _chunks(section: elf.CodeSection) -> Iterable[bytes]:
    """Each function's bytes: from its start to the next start or the section's end."""
    bounds = [*section.starts, len(section.data)]
    for a, b in itertools.pairwise(bounds):
        yield section.data[a:b]


def _cut(section: elf.CodeSection, banned: set[bytes]) -> tuple[bytes, list[int]]:
    """The section without the functions whose bytes are in ``banned``, and the kept starts."""
    if not section.starts:
        return section.data, []
    pieces, kept, size = [section.data[: section.starts[0]]], [], section.starts[0]
    for chunk in _chunks(section):
        if _digest(chunk) in banned:
            continue
        kept.append(size)
        pieces.append(chunk)
        size += len(chunk)
    return b"".join(pieces), kept


@dataclass
class _SplitBuilder:
    """Accumulates one split's windows and counts."""

    streams: list[tuple[str, bytes, np.ndarray]] = field(default_factory=list)
    seen: set[bytes] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("sections", "duplicate_sections", "sections_in_train", "functions_cut_as_in_train"), 0))

    def add(self, code: SourceCode, banned: set[bytes] | None, train_chunks: set[bytes],
            per_source: dict[str, Any]) -> None:
        """Append one source's kept sections; a train split fills ``train_chunks`` with its
        functions' digests, a test split cuts the functions found there out of its sections."""
        is_test = banned is not None
        banned = banned or set()
        parts, starts, offset = [], [], 0
        for obj in code.objects:
            for sec in obj.sections:
                key = _digest(sec.data)
                if key in self.seen:
                    self.counts["duplicate_sections"] += 1
                    continue
                if key in banned:
                    self.counts["sections_in_train"] += 1
                    continue
                self.seen.add(key)
                self.counts["sections"] += 1
                if is_test:
                    data, kept = _cut(sec, train_chunks)
                    self.counts["functions_cut_as_in_train"] += len(sec.starts) - len(kept)
                else:
                    data, kept = sec.data, sec.starts
                    train_chunks.update(_digest(c) for c in _chunks(sec))
                parts.append(data)
                starts.extend(offset + s for s in kept)
                offset += len(data)
        per_source.update(code_bytes=offset, functions=len(starts),
                          windows=-(-offset // WINDOW))
        if offset:
            self.streams.append((code.source.name, b"".join(parts), np.array(starts, np.int64)))

    def arrays(self) -> dict[str, np.ndarray]:
        """``bytes`` uint8 N×W, ``length`` int32 N, ``labels`` uint8 N×W, ``group`` int32 N,
        ``group_names`` str."""
        n = sum(-(-len(s) // WINDOW) for _, s, _ in self.streams)
        data = np.zeros((n, WINDOW), np.uint8)
        labels = np.zeros((n, WINDOW), np.uint8)
        length = np.zeros(n, np.int32)
        group = np.zeros(n, np.int32)
        row = 0
        for g, (_, stream, starts) in enumerate(self.streams):
            k = -(-len(stream) // WINDOW)
            flat = np.zeros(k * WINDOW, np.uint8)
            flat[: len(stream)] = np.frombuffer(stream, np.uint8)
            marks = np.zeros(k * WINDOW, np.uint8)
            marks[starts] = 1
            data[row:row + k] = flat.reshape(k, WINDOW)
            labels[row:row + k] = marks.reshape(k, WINDOW)
            length[row:row + k] = np.minimum(WINDOW, len(stream) - WINDOW * np.arange(k))
            group[row:row + k] = g
            row += k
        names = np.array([name for name, _, _ in self.streams], dtype=str)
        return {"bytes": data, "length": length, "labels": labels, "group": group,
                "group_names": names}


def assemble(
    codes: Sequence[SourceCode], split_of: dict[str, str],
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, int]], dict[str, dict]]:
    """Dedup and window the sources: per-split arrays, per-split counts, per-source counts."""
    builders = {"train": _SplitBuilder(), "test": _SplitBuilder()}
    per_source: dict[str, dict] = {c.source.name: {} for c in codes}
    train_chunks: set[bytes] = set()
    for split in ("train", "test"):
        for code in sorted(codes, key=lambda c: c.source.name):
            if split_of.get(code.source.name) != split or code.status != "used":
                continue
            banned = builders["train"].seen if split == "test" else None
            builders[split].add(code, banned, train_chunks, per_source[code.source.name])
            if progress is not None:
                progress(1)
    arrays = {s: b.arrays() for s, b in builders.items()}
    stats = {}
    for s, b in builders.items():
        a = arrays[s]
        stats[s] = {"archives": len(b.streams), "windows": len(a["bytes"]),
                    "functions": int(a["labels"].sum()), "bytes": int(a["length"].sum()),
                    **b.counts}
    return arrays, stats, per_source
