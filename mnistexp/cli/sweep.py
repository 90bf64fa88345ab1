"""``mnistexp sweep``: expand a grid of runs, then train them, list them, or emit commands."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from mnistexp.api import check_paths
from mnistexp.cli.common import (
    AsciiIntRange,
    CliError,
    data_dir_option,
    one_line_errors,
    runs_dir_option,
    set_option,
    stop_signals_as_interrupt,
)
from mnistexp.core.errors import ExitCode
from mnistexp.core.states import State

if TYPE_CHECKING:
    from mnistexp.orchestration.sweep import PlannedRun, SweepSpec
    from mnistexp.orchestration.workers import Summary


class _SweepCommand(click.Command):
    """Reads ``--emit slurm-array FILE`` as ``--emit slurm-array --emit-file FILE``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        for i, word in enumerate(args):
            pair = args[i : i + 2] == ["--emit", "slurm-array"]
            joined = word == "--emit=slurm-array"
            at = i + (2 if pair else 1)
            if (pair or joined) and at < len(args) and not args[at].startswith("-"):
                args.insert(at, "--emit-file")
                break
        return super().parse_args(ctx, args)


@click.command(cls=_SweepCommand)
@click.argument("sweep_file", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Base config (overrides the sweep file's 'base').",
)
@set_option
@click.option(
    "--grid",
    "grids",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Sweep a key over values, crossed with other --grid keys (repeatable).",
)
@click.option(
    "--zip",
    "zips",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Sweep keys in lockstep: the i-th values of all --zip keys go together.",
)
@click.option(
    "--seeds",
    metavar="SPEC",
    help="0-4 (range, inclusive), 0,2,5 (list) or N (the one seed N: --seeds 3 is seed 3).",
)
@click.option(
    "-j",
    "--jobs",
    type=AsciiIntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes, each with one BLAS thread.",
)
@runs_dir_option
@data_dir_option
@click.option("--force", is_flag=True, help="Retrain runs that already finished.")
@click.option("--retry-failed", is_flag=True, help="Retrain runs that failed or diverged.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue interrupted runs from their last checkpoint "
    "(train.checkpoint_every) instead of starting them over.",
)
@click.option(
    "--fail-fast",
    is_flag=True,
    help="Start no new run after the first failure (in-flight runs finish).",
)
@click.option("--dry-run", is_flag=True, help="List what would train and what would be skipped.")
@click.option(
    "--emit",
    type=click.Choice(["commands", "slurm-array"]),
    help="Print one 'mnistexp train' command per run, or write them to FILE for a "
    "Slurm job array (--emit slurm-array FILE) and print the sbatch line.",
)
@click.option(
    "--emit-file",
    type=click.Path(dir_okay=False, path_type=str),
    metavar="FILE",
    help="Command file of --emit slurm-array.",
)
@click.option(
    "--array-limit",
    type=AsciiIntRange(min=1),
    metavar="M",
    help="With --emit slurm-array: at most M array tasks at once (--array=1-N%M).",
)
@click.option(
    "--no-progress",
    is_flag=True,
    help="No progress on stderr (a bar on a terminal, else one line per finished run).",
)
@one_line_errors
def sweep(
    sweep_file: str | None,
    config_path: str | None,
    overrides: tuple[str, ...],
    grids: tuple[str, ...],
    zips: tuple[str, ...],
    seeds: str | None,
    jobs: int,
    runs_dir: str | None,
    data_dir: str | None,
    force: bool,
    retry_failed: bool,
    resume: bool,
    fail_fast: bool,
    dry_run: bool,
    emit: str | None,
    emit_file: str | None,
    array_limit: int | None,
    no_progress: bool,
) -> None:
    """Train every combination of a grid of overrides, skipping finished runs.

    Runs come from SWEEP_FILE (YAML: base, set, grid, zip, runs, seeds) and/or the options;
    every config is validated before anything trains. Interrupted runs are retrained
    (--resume: continued from their checkpoints); two sweeps over one runs folder train each
    run once.

    \b
    Examples:
      mnistexp sweep -c configs/baseline.yaml --grid train.lr=0.05,0.1 \\
          --grid targets.scheme=onehot,soft,smooth --seeds 0-2 -j 2
      mnistexp sweep configs/sweeps/encodings.yaml --set train.epochs=2 --dry-run
      mnistexp sweep configs/sweeps/encodings.yaml --emit commands | parallel -j 8
      mnistexp sweep configs/sweeps/encodings.yaml --emit slurm-array runs/sweep.txt
    """
    from mnistexp.core.paths import check_output_file
    from mnistexp.orchestration import sweep as lib
    from mnistexp.orchestration import workers

    check_paths(runs_dir, data_dir)
    if emit == "slurm-array" and emit_file:
        check_output_file(emit_file, "command file")
    spec = _spec(sweep_file, config_path, overrides, grids, zips, seeds)
    note = lib.plain_number_note(seeds) if seeds is not None else None
    if note:  # what a plain number means changed: say so
        click.echo(note, err=True)
    planned = lib.expand(spec)
    if emit:
        flags = [
            f
            for f, on in (
                ("--force", force),
                ("--retry-failed", retry_failed),
                ("--resume", resume),
            )
            if on
        ]
        _emit(emit, emit_file, array_limit, planned, spec, runs_dir, data_dir, flags)
    elif dry_run:
        _dry_run(planned, runs_dir, force, retry_failed)
    else:
        progress = not no_progress  # a bar on a terminal, else one line per finished run
        with stop_signals_as_interrupt():
            summary = workers.execute(
                [p.config for p in planned],
                jobs=jobs,
                runs_dir=runs_dir,
                data_dir=data_dir,
                force=force,
                retry_failed=retry_failed,
                resume=resume,
                fail_fast=fail_fast,
                progress=progress,
            )
        _report(summary)
        sys.exit(summary.exit_code)


def _spec(
    sweep_file: str | None,
    config_path: str | None,
    overrides: tuple[str, ...],
    grids: tuple[str, ...],
    zips: tuple[str, ...],
    seeds: str | None,
) -> SweepSpec:
    from mnistexp.orchestration import sweep as lib

    cli = lib.spec_from_options(config_path, overrides, grids, zips, seeds)
    return lib.load_sweep_file(sweep_file).merged(cli) if sweep_file else cli


def _emit(
    kind: str,
    emit_file: str | None,
    limit: int | None,
    planned: list[PlannedRun],
    spec: SweepSpec,
    runs_dir: str | None,
    data_dir: str | None,
    flags: list[str],
) -> None:
    from mnistexp.orchestration import sweep as lib

    commands = lib.emit_commands(planned, spec.base, runs_dir, data_dir, flags)
    if kind == "commands":
        click.echo("\n".join(commands))
        return
    if not emit_file:
        raise CliError("--emit slurm-array needs a FILE: --emit slurm-array runs/sweep.txt")
    path = lib.write_command_file(emit_file, commands)
    click.echo(lib.slurm_snippet(path, len(commands), limit))


def _dry_run(
    planned: list[PlannedRun], runs_dir: str | None, force: bool, retry_failed: bool
) -> None:
    from mnistexp.orchestration import sweep as lib
    from mnistexp.store import runs

    n_train = 0
    names = runs.listing(runs.runs_root(runs_dir))  # listed once, not once per run
    for run in planned:
        folder = runs.find_run(run.config, runs_dir, names)
        status = runs.read_status(folder)
        state = status["state"] if status else None
        train = runs.should_train(state, force, retry_failed)
        n_train += train
        found = folder.name if folder.name != runs.run_name(run.config) else None
        click.echo(f"{lib.plan_line(run.config, state, train, found)}  {run.label}")
    click.echo(f"{len(planned)} runs: {n_train} would train, {len(planned) - n_train} skipped")


def _report(summary: Summary) -> None:
    """Failed runs (one line each) and the summary line, on stderr when something is wrong."""
    for outcome in summary.outcomes:
        if outcome.state in (State.FAILED, State.DIVERGED, State.INTERRUPTED):
            click.echo(f"{outcome.run_dir}: {outcome.state}: {outcome.message}", err=True)
    click.echo(summary.line(), err=summary.exit_code != 0)
    if summary.exit_code in (ExitCode.SIGINT, ExitCode.SIGTERM):
        click.echo(
            "interrupted: run the same sweep again to retrain the interrupted runs "
            "(add --resume to continue them from their checkpoints)",
            err=True,
        )
    elif summary.failed or summary.diverged:
        click.echo("rerun with --retry-failed to retrain failed and diverged runs", err=True)
