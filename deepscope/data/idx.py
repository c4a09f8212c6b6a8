"""A reader for the IDX format of MNIST and Fashion-MNIST.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code (0x08 = unsigned
byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the number of
dimensions. Then come the dimensions as big-endian uint32, then the data in C order, big-endian.
So 0x803 is a 3-D uint8 array (images) and 0x801 a 1-D uint8 array (labels).
"""

from __future__ import annotations

import functools
import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from deepscope.errors import DataCorruptError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(buffer: bytes, *, source: str = "<bytes>", magic: int | None = None) -> np.ndarray:
    """Parse IDX bytes into a native-endian numpy array.

    Parameters
    ----------
    buffer : bytes
        Uncompressed IDX content.
    source : str
        Name used in error messages (the file).
    magic : int, optional
        Required magic number (e.g. ``0x803``).

    Raises
    ------
    DataCorruptError
        Bad magic number, unknown type, or a size that disagrees with the header dimensions.
    """
    if len(buffer) < 4:
        raise DataCorruptError(f"{source}: not an IDX file (only {len(buffer)} bytes)")
    found = int.from_bytes(buffer[:4], "big")
    if buffer[0] or buffer[1] or buffer[2] not in _TYPES:
        raise DataCorruptError(f"{source}: not an IDX file (magic number 0x{found:08x})")
    if magic is not None and found != magic:
        raise DataCorruptError(
            f"{source}: IDX magic number is 0x{found:x}, expected 0x{magic:x} (wrong file?)"
        )
    ndim = buffer[3]
    header = 4 + 4 * ndim
    if len(buffer) < header:
        raise DataCorruptError(f"{source}: IDX header truncated ({len(buffer)} bytes)")
    dims = struct.unpack(f">{ndim}I", buffer[4:header])
    dtype = np.dtype(_TYPES[buffer[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(buffer) != expected:
        raise DataCorruptError(
            f"{source}: IDX header announces shape {dims} ({expected} bytes) but the data has "
            f"{len(buffer)} bytes; the file is truncated or not the right file"
        )
    data = np.frombuffer(buffer, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))  # a writable native-endian copy


def read_idx(path: Path, *, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed when its name ends in ``.gz``).

    Decoded arrays are cached in-process per (path, size, mtime); treat the result as
    read-only.

    Raises
    ------
    DataCorruptError
        The file cannot be decompressed or parsed; the message names the file.
    """
    path = Path(path)
    st = path.stat()
    return _read_cached(str(path.resolve()), st.st_size, st.st_mtime_ns, magic)


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, size: int, mtime_ns: int, magic: int | None) -> np.ndarray:
    del size, mtime_ns  # only part of the cache key
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                buffer = fh.read()
        else:
            buffer = Path(path).read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataCorruptError(f"{path}: cannot decompress ({exc}); the file is damaged") from exc
    array = parse_idx(buffer, source=path, magic=magic)
    array.flags.writeable = False
    return array
