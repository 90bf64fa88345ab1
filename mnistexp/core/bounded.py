"""Reading a file that anyone could have replaced: regular files only, never blocking, bounded.

A run folder's ``status.json`` swapped for a FIFO would block ``open()`` until a writer comes
(forever); one linked to ``/dev/zero`` would be read until memory runs out. So every file
mnistexp reads from a config or a run folder is opened with ``O_NONBLOCK`` (a FIFO opens at
once, with nobody writing), checked to be a regular file by ``fstat`` on the opened handle
(no race with a swap between a check and the open), and read at most up to a size bound.
Config and sweep files (:mod:`mnistexp.core.yamlio`) and run files (:mod:`mnistexp.store.runs`, the
teacher check of :mod:`mnistexp.config.loading`, compare's readers) all read through here.

Errors are ``OSError`` with ``strerror`` set, so callers that turn an OSError into one line
(``cannot read ... (not a regular file)``) need nothing new. A leaf module.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

MAX_RUN_FILE_BYTES = 64 << 20
"""A run folder's text files (status.json, config.json, metrics.json, env.json, history.csv)
are kilobytes; 100,000 epochs of history are about 20 MB. Anything larger is damage."""


class NotRegularFile(OSError):
    """The path names a FIFO, a device, a socket or a folder, not a regular file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(errno.EINVAL, "not a regular file", str(path))


class FileTooLarge(OSError):
    """The file is larger than the bound its reader sets."""

    def __init__(self, path: str | os.PathLike[str], limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {_size(limit)}", str(path))
        self.limit = limit


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading in binary, without blocking, only if it is a regular file;
    :class:`NotRegularFile` (an OSError) otherwise. Reads from the handle block as usual."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | os.PathLike[str], limit: int = MAX_RUN_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; OSError (including
    :class:`NotRegularFile` and :class:`FileTooLarge`) if it cannot be read so."""
    with open_regular(path) as handle:
        blob = handle.read(limit + 1)
    if len(blob) > limit:
        raise FileTooLarge(path, limit)
    return blob


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n} bytes"
