"""``mnistexp evaluate``: evaluation beyond the test set for finished runs, no retraining."""

from __future__ import annotations

import json
import sys

import click

from mnistexp.cli.common import (
    data_dir_option,
    one_line_errors,
    set_option,
    stop_signals_as_interrupt,
)
from mnistexp.core.errors import interrupt_exit_code


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...")
@set_option
@data_dir_option
@click.option(
    "--force", is_flag=True, help="Evaluate again even where the same evaluation is there."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run folder.")
@one_line_errors
def evaluate(
    run_dirs: tuple[str, ...],
    overrides: tuple[str, ...],
    data_dir: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Score finished runs on shifted test sets, other writers' digits and
    out-of-distribution images, with selective prediction: shift.json in each run folder.

    The run is not retrained and its id does not change. By default every shift family and
    every OOD set at its default severities (see the README); --set shift.KEY=VALUE narrows
    it. A RUN_DIR may also be a folder of runs. An evaluation already there with the same
    settings is kept unless --force.

    \b
    Examples:
      mnistexp evaluate runs/baseline-d6d2e7ba-s0
      mnistexp evaluate runs --set shift.families=[rotate] --set shift.ood=[]
    """
    from mnistexp.orchestration.evaluate import evaluate_runs, expand, shift_settings

    shift = shift_settings(overrides)
    folders = expand(list(run_dirs))
    try:
        with stop_signals_as_interrupt():
            done = evaluate_runs(folders, shift, data_dir=data_dir, force=force)
    except KeyboardInterrupt as exc:
        click.echo("evaluate: interrupted; finished folders keep their evaluation", err=True)
        sys.exit(interrupt_exit_code(exc))
    for item in done:
        if as_json:
            record = {
                "run_dir": str(item.run_dir),
                "skipped": item.skipped,
                "seconds": item.seconds,
            }
            click.echo(json.dumps(record, sort_keys=True))
        elif item.skipped:
            click.echo(f"{item.run_dir}: up to date (shift.json has these settings)")
        else:
            click.echo(f"{item.run_dir}: evaluated in {item.seconds:.1f} s -> shift.json")
