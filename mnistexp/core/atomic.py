"""The one way mnistexp writes a file: a temporary name beside it, then an atomic rename.

Run files, the decoded data cache, downloads, figures and emitted command files all go through
:class:`AtomicFile` (or :func:`write_file`), so a reader never sees half a file and a failed
write (a full disk, a quota, Ctrl-C) leaves the old file, if any, as it was.

Permissions: the temporary file is created by ``os.open(..., 0o666)``, so the kernel applies
the user's umask exactly as it does for ``open()`` (``tempfile.mkstemp`` would give 0600,
unreadable to the group sharing a runs folder). Errors are ``OSError``, which each caller
turns into its own one-line message.

Folder handles: with ``dir_fd`` (an open descriptor of a folder) the path is a name inside that
folder, and the temporary file, the rename and the clean-up all resolve through the descriptor, not
through the folder's name. A run folder writes this way (:mod:`mnistexp.store.runs`): its files land
in the folder it claimed even after that folder was renamed away.

Signals: a stop signal (Ctrl-C, SIGTERM, a sweep worker's parent dying) is held while the
writer creates, renames or deletes its temporary file, and for the whole of a
:func:`write_file`, then raised at once (:func:`signals_deferred`); so an interrupt never
leaves a temporary file behind, nor a status that disagrees with the file it describes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from mnistexp.core.errors import STOP_SIGNALS

FILE_MODE = 0o666  # before the umask, as open() creates files
TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold the stop signals (:data:`~mnistexp.core.errors.STOP_SIGNALS`: SIGINT, SIGTERM and a
    worker's parent-gone signal) until the block is done; a signal that arrives meanwhile is
    raised again at the end of the block, through the handler it would have met. (Masking
    the signal would not do: the kernel hands a process's signal to any thread, e.g. a BLAS
    worker, and Python runs the handler in the main thread at the next bytecode.) Only the
    main thread can set handlers; elsewhere this does nothing. Blocks nest."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in STOP_SIGNALS
    }
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for number in dict.fromkeys(pending):
            signal.raise_signal(number)


def temp_name(path: Path) -> Path:
    """A hidden, unguessable name beside ``path`` for writing it: ``.<name>.<random>.tmp``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


class AtomicFile:
    """``with AtomicFile(path) as fh: fh.write(...)`` writes ``path`` all at once or not at all.

    The data goes to :attr:`tmp` (created with the umask applied); a clean exit renames it onto
    ``path`` (:meth:`commit`), an exception deletes it (:meth:`abort`). :meth:`discard` drops
    the file from inside the block (e.g. a download whose checksum did not match). Without a
    ``with`` block: :meth:`open`, then :meth:`commit` or :meth:`abort`.
    """

    def __init__(self, path: str | os.PathLike[str], dir_fd: int | None = None) -> None:
        self.path = Path(path)
        self.tmp = temp_name(self.path)
        self._dir_fd = dir_fd  # None: paths as given; else names inside that open folder
        self._handle: BinaryIO | None = None
        self._discarded = False

    def open(self) -> BinaryIO:
        """Create :attr:`tmp` and return it opened for writing; OSError if it cannot be."""
        with signals_deferred():  # no interrupt between creating the file and owning it
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
            fd = os.open(self.tmp, flags, FILE_MODE, dir_fd=self._dir_fd)
            self._handle = os.fdopen(fd, "wb")
        return self._handle

    def discard(self) -> None:
        """Do not rename the file into place when the block ends."""
        self._discarded = True

    def commit(self) -> None:
        """Close the file and rename it onto :attr:`path`; on any failure delete it."""
        with signals_deferred():
            try:
                if self._handle is not None:
                    self._handle.close()  # a full disk may surface only at this last flush
                os.replace(self.tmp, self.path, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            except BaseException:
                self._unlink_tmp()
                raise

    def abort(self) -> None:
        """Close and delete the temporary file; :attr:`path` stays as it was."""
        with signals_deferred():
            try:
                if self._handle is not None:
                    self._handle.close()
            except OSError:
                pass
            finally:
                self._unlink_tmp()

    def _unlink_tmp(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp, dir_fd=self._dir_fd)

    def __enter__(self) -> BinaryIO:
        return self.open()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None and not self._discarded:
            self.commit()
        else:
            self.abort()


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# os.replace is os.rename with overwriting on every system; only os.rename is listed.
DIR_FD_WRITES = {os.open, os.rename, os.unlink} <= os.supports_dir_fd and hasattr(os, "O_DIRECTORY")
"""Whether this system writes through folder handles (``dir_fd``): Linux, macOS, BSDs."""


def write_file(path: str | os.PathLike[str], data: bytes | str, dir_fd: int | None = None) -> None:
    """Write ``data`` (str as UTF-8) to ``path`` atomically; ``OSError`` if it cannot be.
    With ``dir_fd``, ``path`` is a name inside that open folder."""
    payload = data.encode() if isinstance(data, str) else data
    with signals_deferred(), AtomicFile(path, dir_fd) as handle:
        handle.write(payload)
