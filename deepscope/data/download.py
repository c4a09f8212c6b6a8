"""Fetch missing dataset files: download to a temp file, check sha256, rename atomically.

Sources are the official URLs of each :class:`~deepscope.data.integrity.FileSpec`, or, when a
mirror is given (keyword or the ``DEEPSCOPE_MIRROR`` environment variable), only
``<mirror>/<relpath>``: a mirror is laid out like the data folder, so it can also serve files
that have no official source. Nothing half-written is ever left at the destination: the
download goes to a hidden ``.part`` file in the same folder, which is removed on any failure.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from deepscope.data.integrity import FileSpec, check_file, remember_hash
from deepscope.errors import DataCorruptError, DataMissingError

MIRROR_ENV = "DEEPSCOPE_MIRROR"
#: Seconds a connection attempt or a stalled read may take before the source is given up.
DEFAULT_TIMEOUT = 10.0
_CHUNK = 1 << 20
_USER_AGENT = "deepscope/0.1 (dataset download)"


@dataclass(frozen=True)
class FetchOptions:
    """How :func:`ensure_files` treats missing files."""

    download: bool = True
    mirror: str | None = None
    progress: bool = True
    timeout: float = DEFAULT_TIMEOUT


def resolve_mirror(mirror: str | None) -> str | None:
    """The mirror to use: ``mirror`` if given, else ``$DEEPSCOPE_MIRROR`` if non-empty."""
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV, "")
    mirror = mirror.strip()
    return mirror or None


def sources(spec: FileSpec, mirror: str | None) -> list[str]:
    """URLs to try for ``spec``: only the mirror when one is set, else the official URLs."""
    if mirror:
        return [mirror.rstrip("/") + "/" + spec.relpath]
    return list(spec.urls)


def download_file(
    url: str,
    dest: Path,
    sha256: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` if and only if its content has the given sha256.

    Parameters
    ----------
    url : str
        Source URL (``http``, ``https`` or ``file``).
    dest : pathlib.Path
        Final location; its folder is created if needed.
    sha256 : str
        Expected hash of the content.
    timeout : float
        Socket timeout in seconds for connecting and for each read.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DataCorruptError
        The downloaded content has another hash; nothing is written.
    DataMissingError
        The source could not be reached or read, or ``dest`` cannot be written; nothing is written.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise DataMissingError(f"cannot write to {dest.parent}: {exc}") from exc
    tmp = Path(tmp_name)
    out = os.fdopen(fd, "wb")
    done = False
    try:
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                total = response.headers.get("Content-Length")
                with tqdm(
                    total=int(total) if total and total.isdigit() else None,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=not progress,
                    leave=False,
                ) as bar:
                    while chunk := response.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
            out.close()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                reason: object = f"HTTP {exc.code} {exc.reason}"
            else:
                reason = getattr(exc, "reason", None) or exc
            raise DataMissingError(f"download of {url} failed: {reason}") from exc
        actual = digest.hexdigest()
        if actual != sha256:
            raise DataCorruptError(
                f"download of {url} gave a file with sha256 {actual}, expected {sha256}; "
                f"nothing was saved to {dest}. The source may be broken or tampered with."
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; datasets are meant to be shared
        os.replace(tmp, dest)
        done = True
        remember_hash(dest, actual)
        return dest
    finally:
        out.close()
        if not done:
            tmp.unlink(missing_ok=True)


def _missing_message(
    dataset: str,
    root: Path,
    missing: Sequence[FileSpec],
    reasons: dict[str, list[str]],
    optional: Sequence[FileSpec] = (),
) -> str:
    lines = [f"{dataset}: {len(missing)} required file(s) missing in the data folder {root}:"]
    for spec in missing:
        lines.append(f"  - {spec.path(root)}  (sha256 {spec.sha256})")
        for reason in reasons.get(spec.relpath, []):
            lines.append(f"      {reason}")
        if spec.urls:
            lines.append(f"      official source: {spec.urls[0]}")
        if spec.note:
            lines.append(f"      {spec.note}")
    for spec in optional:
        lines.append(f"  optional, also missing: {spec.path(root)}  (sha256 {spec.sha256})")
        if spec.note:
            lines.append(f"      {spec.note}")
    lines.append(
        "Fix: put each file at the path shown, or point DEEPSCOPE_DATA (or root=) at a folder "
        "that has them (same layout); files with an official source are downloaded when "
        f"download=True and the machine is online ({MIRROR_ENV}=<url> sets another base URL)."
    )
    return "\n".join(lines)


def ensure_files(
    dataset: str,
    required: Sequence[FileSpec],
    root: Path,
    options: FetchOptions,
    *,
    optional: Sequence[FileSpec] = (),
) -> dict[str, Path | None]:
    """Make sure the given files exist under ``root`` with their pinned hashes.

    Present files are checked (a mismatch raises :class:`DataCorruptError`); missing ones are
    downloaded when ``options.download`` and a source exists. Optional files that stay missing
    map to ``None``.

    Returns
    -------
    dict
        ``relpath -> path`` (or ``None`` for an absent optional file).

    Raises
    ------
    DataMissingError
        A required file is missing and could not be fetched; the message lists every such file
        with its full destination path.
    DataCorruptError
        A present file, or every downloaded copy of a missing one, has the wrong hash.
    """
    mirror = resolve_mirror(options.mirror)
    found: dict[str, Path | None] = {}
    missing: list[FileSpec] = []
    reasons: dict[str, list[str]] = {}
    required_paths = {spec.relpath for spec in required}
    for spec in [*required, *optional]:
        path = spec.path(root)
        if path.is_file():
            found[spec.relpath] = check_file(dataset, spec, path)
            continue
        urls = sources(spec, mirror)
        why = reasons.setdefault(spec.relpath, [])
        corrupt: list[DataCorruptError] = []
        if not options.download:
            why.append("not downloaded: download=False")
        elif not urls:
            why.append("no official download exists for this file")
        for url in urls if options.download else []:
            try:
                found[spec.relpath] = download_file(
                    url, path, spec.sha256, timeout=options.timeout, progress=options.progress
                )
                break
            except DataCorruptError as exc:
                corrupt.append(exc)
                why.append(str(exc))
            except DataMissingError as exc:
                why.append(str(exc))
        else:
            found[spec.relpath] = None
            if spec.relpath in required_paths:
                if corrupt:
                    raise DataCorruptError(f"{dataset}: " + "; ".join(map(str, corrupt)))
                missing.append(spec)
    if missing:
        absent_optional = [spec for spec in optional if found.get(spec.relpath) is None]
        raise DataMissingError(
            _missing_message(dataset, root, missing, reasons, absent_optional)
        )
    return found
