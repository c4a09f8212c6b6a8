"""Read the members of a Unix ``ar`` archive (static libraries, ``lib*.a``) in memory.

The format: the magic ``!<arch>\\n``, then members, each a 60-byte ASCII header (name 16, mtime
12, uid 6, gid 6, mode 8, size 10, the terminator ``\\x60\\n``) followed by ``size`` bytes and
one ``\\n`` when the size is odd. Special members: ``/`` and ``/SYM64/`` (symbol index, skipped),
``//`` (GNU table of long names; a member named ``/123`` takes its name at offset 123 there) and
BSD long names ``#1/N`` (the first N bytes of the data are the name). GNU "thin" archives
(``!<thin>\\n``) hold no member data and are refused. No package on the project's machines reads
``ar`` files, and the format fits in this module, so nothing is shelled out to ``ar``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from deepscope.errors import DataCorruptError

MAGIC = b"!<arch>\n"
THIN_MAGIC = b"!<thin>\n"
_HEADER = 60
_SKIP = {"/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED"}


@dataclass(frozen=True)
class Member:
    """One archive member: its name and its bytes."""

    name: str
    data: bytes


def is_archive(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) starts like an ``ar`` archive."""
    return head.startswith(MAGIC) or head.startswith(THIN_MAGIC)


def _long_name(table: bytes, field: str, source: str) -> str:
    try:
        offset = int(field[1:])
    except ValueError:
        raise DataCorruptError(f"{source}: bad member name {field!r} in the archive") from None
    if not table or offset >= len(table):
        raise DataCorruptError(f"{source}: member name {field!r} points outside the name table")
    end = table.find(b"\n", offset)
    raw = table[offset:] if end < 0 else table[offset:end]
    return raw.decode("utf-8", "replace").rstrip("/")


def _check_index(index: bytes, width: int, size: int, source: str) -> None:
    """The GNU symbol index lists member offsets: one past the end means the file was cut."""
    if len(index) < width:
        return
    count = int.from_bytes(index[:width], "big")
    offsets = index[width: width * (count + 1)]
    last = max((int.from_bytes(offsets[i:i + width], "big")
                for i in range(0, len(offsets), width)), default=0)
    if len(offsets) < width * count or last >= size:
        raise DataCorruptError(
            f"{source}: truncated archive: its symbol index refers to byte {last}, the file has "
            f"{size} bytes"
        )


def members(blob: bytes, source: str) -> Iterator[Member]:
    """Yield the regular members of the archive ``blob`` in file order.

    Parameters
    ----------
    blob : bytes
        The whole archive.
    source : str
        Name used in error messages (the archive's path).

    Raises
    ------
    DataCorruptError
        Not an archive, a thin archive, a malformed header, or a member that runs past the end
        of the file (a truncated archive).
    """
    if blob.startswith(THIN_MAGIC):
        raise DataCorruptError(
            f"{source}: a GNU thin archive holds only paths to its members; pass the member "
            "object files themselves"
        )
    if not blob.startswith(MAGIC):
        raise DataCorruptError(f"{source}: not an ar archive (no '!<arch>' magic)")
    pos, table = len(MAGIC), b""
    while pos < len(blob):
        if blob[pos:pos + 1] == b"\n":  # stray padding byte
            pos += 1
            continue
        header = blob[pos:pos + _HEADER]
        if len(header) < _HEADER or header[58:60] != b"`\n":
            raise DataCorruptError(
                f"{source}: truncated or malformed archive (bad member header at byte {pos})"
            )
        field = header[:16].decode("ascii", "replace").rstrip(" ")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DataCorruptError(f"{source}: bad member size at byte {pos}") from None
        start, end = pos + _HEADER, pos + _HEADER + size
        if size < 0 or end > len(blob):
            raise DataCorruptError(
                f"{source}: truncated archive: member at byte {pos} needs {size} bytes, the file "
                f"ends {len(blob) - start} bytes later"
            )
        data = blob[start:end]
        pos = end + (size & 1)
        if field == "//":
            table = data
            continue
        if field in ("/", "/SYM64/"):
            _check_index(data, 8 if field == "/SYM64/" else 4, len(blob), source)
            continue
        if field in _SKIP:
            continue
        if field.startswith("#1/"):
            n = int(field[3:]) if field[3:].isdigit() else -1
            if n < 0 or n > len(data):
                raise DataCorruptError(f"{source}: bad BSD member name {field!r}")
            name, data = data[:n].rstrip(b"\0").decode("utf-8", "replace"), data[n:]
        elif field.startswith("/") and field[1:].isdigit():
            name = _long_name(table, field, source)
        else:
            name = field.rstrip("/")
        yield Member(name, data)
