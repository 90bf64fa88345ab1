"""Shared CLI plumbing: one-line errors with exit code 2, common options."""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from mnistexp.core.errors import ExitCode, Terminated, UsageError
from mnistexp.core.limits import ascii_digits

EXIT_USAGE = ExitCode.BAD_INPUT  # the other codes: mnistexp.core.errors.ExitCode

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A one-line error that exits with code 2 (usage, config or data problem)."""

    exit_code = EXIT_USAGE


class AsciiIntRange(click.IntRange):
    """click's IntRange under the command line's one rule for whole numbers, the rule of
    ``sweep --seeds`` (:func:`mnistexp.core.limits.ascii_digits`): click reads numbers with
    ``int()``, which takes '٣' as 3. A leading '-' is left to the range check."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not ascii_digits(value.strip().removeprefix("-")):
            self.fail(f"{value!r} is not a whole number in ASCII digits 0-9", param, ctx)
        return super().convert(value, param, ctx)


def one_line_errors(func: F) -> F:
    """Turn library :class:`UsageError` into ``Error: <message>`` and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UsageError as exc:
            raise CliError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Folder with the MNIST IDX files (overrides MNISTEXP_DATA_DIR and the cache).",
)

runs_dir_option = click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Where run folders live (default: MNISTEXP_RUNS_DIR, else ./runs).",
)

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, value as YAML (repeatable): --set model.hidden=[256,128].",
)


@contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM (kill, a batch system's time limit) stop a command the same
    way: the first raises KeyboardInterrupt (:class:`Terminated` for SIGTERM), so the run in
    flight is marked ``interrupted`` and the command exits 130 (143). From then on both are
    ignored until the process exits: a second Ctrl-C would otherwise cut short the recording
    of the first (a run left ``running``, click's ``Aborted!`` and exit 1, or a sweep's summary
    that misses the runs it stopped). ``kill -9`` still stops at once."""
    stops = (signal.SIGINT, signal.SIGTERM)

    def first(signum: int, frame: Any) -> None:
        for number in stops:  # SIG_IGN, not a Python handler: it holds through shutdown
            signal.signal(number, signal.SIG_IGN)
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    previous = {number: signal.signal(number, first) for number in stops}
    try:
        yield
    finally:
        for number, handler in previous.items():
            if signal.getsignal(number) is first:  # not stopped: as before; else ignored
                signal.signal(number, handler)
