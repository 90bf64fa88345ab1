"""Paths a command reads or writes, checked once before any work starts.

Every command checks each path it was given (option, environment variable or argument) here
first, so a name the filesystem cannot hold, an output folder below a file or in a place that
cannot be written, or an output file that is a folder is one :class:`UsageError` line instead
of a traceback after minutes of training. Outputs are not created here: the writers create
them (:mod:`mnistexp.core.atomic`), and their own errors are one line too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mnistexp.core.errors import UsageError

_DEFAULT_NAME_MAX = 255
_DEFAULT_PATH_MAX = 4096


def check_names(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path; UsageError if it is empty, holds a NUL byte, a component longer
    than its filesystem allows (NAME_MAX) or is longer than PATH_MAX as a whole."""
    text = os.fspath(path)
    if text == "":
        raise UsageError(f"{what} is empty; name a folder or file")
    if "\0" in text:
        raise UsageError(f"{what} {text!r}: a path cannot contain a NUL byte")
    anchor = _existing_ancestor(Path(text))
    name_max = _pathconf(anchor, "PC_NAME_MAX", _DEFAULT_NAME_MAX)
    long = next((p for p in Path(text).parts if len(os.fsencode(p)) > name_max), None)
    if long is not None:
        shown = long if len(long) <= 40 else long[:37] + "..."
        raise UsageError(
            f"{what}: the name {shown!r} is {len(os.fsencode(long))} bytes, longer than the "
            f"filesystem allows ({name_max})"
        )
    path_max = _pathconf(anchor, "PC_PATH_MAX", _DEFAULT_PATH_MAX)
    if len(os.fsencode(os.path.abspath(text))) >= path_max:
        raise UsageError(f"{what}: the path is longer than the filesystem allows ({path_max})")
    return Path(text)


def check_output_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path, if it is or can become a folder this process writes into."""
    folder = check_names(path, what)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: cannot be the {what} (it is a file, not a folder)")
    anchor = _existing_ancestor(folder)
    if not anchor.is_dir():
        raise UsageError(f"{folder}: cannot create the {what} ({anchor} is a file, not a folder)")
    try:  # a real probe: permission bits say nothing for root, nor for /proc or read-only mounts
        os.rmdir(tempfile.mkdtemp(prefix=".mnistexp-probe-", dir=anchor))
    except OSError as exc:
        raise UsageError(
            f"{folder}: cannot create the {what} ({anchor}: {exc.strerror or exc})"
        ) from None
    return folder


def check_output_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path, if a file can be written there (its folder may not exist yet)."""
    file = check_names(path, what)
    if file.is_dir():
        raise UsageError(f"{file}: cannot be the {what} (it is a folder)")
    check_output_folder(file.absolute().parent, f"folder of the {what}")
    return file


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder (or file) on ``path``'s way up that exists; the cwd for relative."""
    current = path if path.is_absolute() else Path.cwd() / path
    while True:
        try:
            if os.path.lexists(current):
                return current
        except (OSError, ValueError):
            pass
        if current.parent == current:
            return current
        current = current.parent


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(path if path.is_dir() else path.parent, name)
    except (OSError, ValueError, AttributeError):
        return default
    return value if value > 0 else default
