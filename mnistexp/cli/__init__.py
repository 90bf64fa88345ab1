"""The ``mnistexp`` command line: parse, call the library, print.

Only this package imports click. Command modules import numpy-heavy library modules inside
the command bodies, so ``mnistexp --help`` stays fast.
"""

from __future__ import annotations

import click

from mnistexp import __version__
from mnistexp.cli.common import EXIT_USAGE

__all__ = ["EXIT_USAGE", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnistexp")
def main() -> None:
    """Train, compare and sweep MLP experiments on MNIST: accuracy and calibration.

    \b
    Example:
      mnistexp train --config configs/baseline.yaml --seed 1
      mnistexp compare configs/baseline.yaml configs/mse_sigmoid.yaml --seeds 3
    """


def _register() -> None:
    from mnistexp.cli import data, train
    from mnistexp.cli.compare import compare

    main.add_command(data.data)
    main.add_command(compare)
    main.add_command(train.train)
    from mnistexp.cli import sweep as sweep_cli
    main.add_command(sweep_cli.sweep)


_register()
