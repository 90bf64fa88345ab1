"""The ``mnistexp`` command line: parse, call the library, print.

Only this package imports click. Command modules import numpy-heavy library modules inside
the command bodies, so ``mnistexp --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from mnistexp import __version__
from mnistexp.cli.common import EXIT_USAGE, CliError

__all__ = ["ARGV", "EXIT_USAGE", "main"]

ARGV = "mnistexp.argv"
"""Key of ``click.Context.meta`` holding the arguments the command was given (after the
program name): what a report records as its command line, also when ``main`` is called
with arguments in process rather than from ``sys.argv``."""


class _OneLineGroup(click.Group):
    """Click's own usage errors (a missing value, an unknown option, ``--seed -1``) in our
    format: one ``Error:`` line that ends with where to find help, exit code 2, instead of a
    usage block above the error."""

    def make_context(
        self, info_name: str | None, args: list[str], *rest: Any, **kwargs: Any
    ) -> click.Context:
        raw = list(args)  # the command line as given, before click consumes it
        with _one_line():
            ctx = super().make_context(info_name, args, *rest, **kwargs)
        ctx.meta[ARGV] = raw  # meta is shared with the subcommand's context
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line():
            return super().invoke(ctx)


@contextmanager
def _one_line() -> Iterator[None]:
    try:
        yield
    except click.UsageError as exc:
        if exc.ctx is None:
            raise
        where = f"see '{exc.ctx.command_path} --help'"
        raise CliError(f"{exc.format_message()} ({where})".replace("\n", " ")) from None


@click.group(cls=_OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnistexp")
def main() -> None:
    """Train, compare and sweep MLP experiments on MNIST: accuracy and calibration.

    \b
    Example:
      mnistexp train --config configs/baseline.yaml --seed 1
      mnistexp compare configs/baseline.yaml configs/mse_sigmoid.yaml --seeds 0-2
    """


def _register() -> None:
    from mnistexp.cli import data, train
    from mnistexp.cli.compare import compare
    from mnistexp.cli.evaluate import evaluate

    main.add_command(data.data)
    main.add_command(compare)
    main.add_command(evaluate)
    main.add_command(train.train)
    from mnistexp.cli import sweep as sweep_cli

    main.add_command(sweep_cli.sweep)


_register()
