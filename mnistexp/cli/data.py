"""``mnistexp data``: where the MNIST files are, whether they verify, and fetching them.

The library (:mod:`mnistexp.data.datasets`, which imports numpy) is imported inside each command, so
``mnistexp --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mnistexp.cli.common import data_dir_option, one_line_errors
from mnistexp.core.errors import DataError

if TYPE_CHECKING:
    from pathlib import Path

    from mnistexp.data.datasets import FileReport, MissingFiles

_LOOKED = {
    "option": "looked in the folder given by --data-dir",
    "env": "looked in the folder given by MNISTEXP_DATA_DIR",
    "cache": "looked in the user cache: no --data-dir, MNISTEXP_DATA_DIR unset",
}
_ORIGINS = {
    "option": "--data-dir",
    "env": "MNISTEXP_DATA_DIR",
    "cache": "the user cache",
    "download": "downloaded into the user cache",
}


@click.group()
def data() -> None:
    """Find, verify and download the MNIST files.

    \b
    Example:
      mnistexp data fetch
      mnistexp data verify --data-dir ~/datasets/mnist
    """


@data.command()
@data_dir_option
@one_line_errors
def info(data_dir: str | None) -> None:
    """Show where the MNIST files are, how they were found, and their sizes and shapes.

    Reads only the file headers; never downloads. Missing files are information, not an
    error: they are listed with where they were looked for and how to get them (exit 0;
    'mnistexp data verify' fails on them).

    \b
    Example:
      mnistexp data info --data-dir ~/datasets/mnist
    """
    from mnistexp.data import datasets as datalib

    try:
        source, files = datalib.describe(data_dir=data_dir)
    except datalib.MissingFiles as missing:
        _show_missing(missing, datalib.cache_root())
        return
    click.echo(f"folder  {source.folder}  (found via {_ORIGINS[source.origin]})")
    click.echo(f"cache   {datalib.cache_root()}")
    for item in files:
        shape = " x ".join(str(n) for n in item.shape)
        state = "verified" if item.verified else "not verified yet (run 'mnistexp data verify')"
        click.echo(f"{item.file:28}  {item.size:>12,} bytes  {shape:>16}  {state}")


def _show_missing(missing: MissingFiles, cache: Path) -> None:
    """``data info`` where files are missing: where it looked, each file, how to get them."""
    looked = _LOOKED[missing.origin]
    state = "" if missing.folder.is_dir() else "; the folder does not exist"
    click.echo(f"folder  {missing.folder}  ({looked}{state})")
    click.echo(f"cache   {cache}")
    for name, path in missing.files.items():
        found = f"{path.stat().st_size:>12,} bytes  present" if path else "missing"
        click.echo(f"{name:28}  {found}")
    n, total = len(missing.missing), len(missing.files)
    click.echo(f"{n} of {total} files missing; {missing.advice}")


@data.command()
@data_dir_option
@one_line_errors
def verify(data_dir: str | None) -> None:
    """Check the sha256 of the decompressed bytes of all four MNIST files.

    Exits with code 2 and one line naming the bad file if any does not match.

    \b
    Example:
      mnistexp data verify --data-dir ~/datasets/mnist
    """
    from mnistexp.data import datasets as datalib

    _report(datalib.verify(data_dir=data_dir))


@data.command()
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Folder to download into (default: the user cache, $MNISTEXP_CACHE_DIR/mnist).",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show a download progress bar (only when stderr is a terminal).",
)
@one_line_errors
def fetch(dest: str | None, progress: bool) -> None:
    """Download the MNIST files missing from DEST (or the cache), then verify all four.

    \b
    Example:
      mnistexp data fetch
      mnistexp data fetch --dest ~/datasets/mnist
    """
    from mnistexp.data import datasets as datalib

    folder = datalib.fetch(dest=dest, progress=progress)
    _report(datalib.verify(data_dir=folder))
    click.echo(f"files are in {folder}")


def _report(reports: list[FileReport]) -> None:
    """Print one line per good file; raise one DataError line if any file failed."""
    failed = [report for report in reports if not report.ok]
    width = max((len(str(report.file)) for report in reports), default=0)
    for report in reports:
        if report.ok:  # names padded: the checksums line up
            click.echo(f"ok  {report.file!s:<{width}}  sha256 {report.sha256[:8]}…")
    if len(failed) == 1:
        raise DataError(failed[0].message)
    if failed:
        details = "; ".join(report.message for report in failed)
        raise DataError(f"{len(failed)} of {len(reports)} files failed verification: {details}")
    click.echo(f"all {len(reports)} files verified")
