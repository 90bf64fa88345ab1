"""The IDX file format of MNIST: parsing bytes into arrays, and writing arrays as files.

An IDX file is two zero bytes, a type code, a dimension count, the dimensions as big-endian
uint32 and the payload in big-endian order (LeCun et al.'s format description). Problems are
``ValueError``s with a one-line reason; :mod:`mnistexp.data.datasets` names the file and says
what to do.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistexp.core import atomic

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian dtype of the payload.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def write_idx(
    path: str | os.PathLike[str], array: np.ndarray, compress: bool | None = None
) -> Path:
    """Write ``array`` (1 to 4 dimensions, an IDX dtype) as an IDX file.

    ``compress=None`` gzips when the path ends with ``.gz``. Returns the path.
    """
    path = Path(path)
    blob = idx_bytes(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        blob = gzip.compress(blob, compresslevel=6, mtime=0)
    atomic.write_file(path, blob)
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (1 to 4 dimensions, an IDX dtype) as the bytes of an uncompressed IDX file."""
    array = np.asarray(array)
    code = _idx_code(array.dtype)
    if not 1 <= array.ndim <= 4:
        raise ValueError(f"IDX arrays have 1 to 4 dimensions, got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(IDX_DTYPES[code], copy=False).tobytes()


def _idx_code(dtype: np.dtype) -> int:
    """The IDX type code of a numpy dtype (any byte order)."""
    for code, idx_dtype in IDX_DTYPES.items():
        if dtype.kind == idx_dtype.kind and dtype.itemsize == idx_dtype.itemsize:
            return code
    raise ValueError(f"dtype {dtype} has no IDX type code")


def parse_header(raw: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """Check an IDX header; returns (payload dtype, dims, header length). Raises ValueError."""
    if len(raw) < 4:
        raise ValueError(f"too short for an IDX header ({len(raw)} bytes)")
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0":
        raise ValueError(f"not an IDX file (magic bytes {raw[:4].hex()}, expected 0000 tt nn)")
    if code not in IDX_DTYPES:
        raise ValueError(f"unsupported IDX data type 0x{code:02x}")
    if not 1 <= ndim <= 4:
        raise ValueError(f"IDX dimension count {ndim} is outside 1..4")
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise ValueError(f"truncated header ({len(raw)} bytes, {ndim} dimensions need {offset})")
    dims = struct.unpack_from(f">{ndim}I", raw, 4)
    return IDX_DTYPES[code], dims, offset


def parse_idx(raw: bytes) -> np.ndarray:
    """Decode IDX bytes into a read-only native-endian array. Raises ValueError."""
    dtype, dims, offset = parse_header(raw)
    count = math.prod(dims)
    expected, payload = count * dtype.itemsize, len(raw) - offset
    if payload < expected:
        raise ValueError(f"truncated: {payload} data bytes, expected {expected} for shape {dims}")
    if payload > expected:
        raise ValueError(f"{payload - expected} trailing bytes after the data for shape {dims}")
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(dims)
    if dtype.itemsize > 1:
        array = array.astype(dtype.newbyteorder("="))
        array.flags.writeable = False
    return array


READ_SLACK = 1 << 20  # read past a header's declared size by this much, to name trailing bytes


def read_bounded(handle: BinaryIO, *, expect_gzip: bool, limit: int | None = None) -> bytes:
    """The payload of the open file ``handle``, gunzipped if it starts with the gzip magic,
    never more than ``limit`` + 1 bytes of it in memory: a gzip bomb (or a huge plain file)
    stops at the expected size with a ValueError, having cost that much and no more.

    Without ``limit`` the size the IDX header declares is the expected size (plus
    :data:`READ_SLACK`, so that a few trailing bytes are still named as such).
    """
    magic = handle.read(2)
    handle.seek(0)
    if magic != GZIP_MAGIC and expect_gzip:
        raise ValueError(f"named .gz but is not gzip data (starts with {magic.hex() or 'nothing'})")
    stream: io.BufferedIOBase | BinaryIO = (
        gzip.GzipFile(fileobj=handle) if magic == GZIP_MAGIC else handle
    )
    try:
        with stream:
            head = stream.read(4 + 4 * 4)
            bound = limit if limit is not None else _declared_size(head) + READ_SLACK
            raw = head + stream.read(max(bound + 1 - len(head), 0))
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"bad gzip stream ({exc})") from None
    if len(raw) > bound:
        raise ValueError(f"decompresses to more than {bound} bytes, the expected size")
    return raw


def _declared_size(head: bytes) -> int:
    """Header plus payload bytes an IDX file declares in its first 20 bytes (a short header
    declares only itself; :func:`parse_idx` then says what is wrong)."""
    try:
        dtype, dims, offset = parse_header(head)
    except ValueError:
        return len(head)
    return offset + math.prod(dims) * dtype.itemsize


def decompress(blob: bytes, *, expect_gzip: bool, limit: int | None = None) -> bytes:
    """The payload of ``blob``: gunzipped if it starts with the gzip magic. Raises ValueError,
    also when the payload would exceed ``limit`` bytes (a gzip bomb from a mirror)."""
    if blob[:2] == GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(blob)) as stream:
                raw = stream.read(-1 if limit is None else limit + 1)
        except (EOFError, zlib.error, OSError) as exc:
            raise ValueError(f"bad gzip stream ({exc})") from None
        if limit is not None and len(raw) > limit:
            raise ValueError(f"decompresses to more than {limit} bytes")
        return raw
    if expect_gzip:
        raise ValueError(
            f"named .gz but is not gzip data (starts with {blob[:4].hex() or 'nothing'})"
        )
    return blob
