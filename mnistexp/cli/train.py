"""``mnistexp train``: one run, one folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mnistexp import api
from mnistexp.cli.common import (
    AsciiIntRange,
    data_dir_option,
    one_line_errors,
    runs_dir_option,
    set_option,
    stop_signals_as_interrupt,
)
from mnistexp.core.errors import interrupt_exit_code
from mnistexp.core.states import State
from mnistexp.eval.fits import fit_problems

SUMMARY_KEYS = ("accuracy", "nll", "brier", "ece")


@click.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="YAML config; keys it leaves out take their defaults.",
)
@set_option
@click.option("--seed", type=AsciiIntRange(min=0), help="Shorthand for --set seed=N.")
@click.option("--name", help="Run name (default: the config file's stem).")
@runs_dir_option
@data_dir_option
@click.option("--force", is_flag=True, help="Retrain even if the run already finished.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Retrain a run that failed or diverged (interrupted runs are retrained anyway).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run from its last checkpoint "
    "(train.checkpoint_every) instead of starting over.",
)
@click.option(
    "--print-config",
    is_flag=True,
    help="Print the resolved config (block YAML) and the run folder it would write, and exit.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar (also off when not a tty).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object: run_dir, state, metrics."
)
@one_line_errors
def train(
    config_path: str | None,
    overrides: tuple[str, ...],
    seed: int | None,
    name: str | None,
    runs_dir: str | None,
    data_dir: str | None,
    force: bool,
    retry_failed: bool,
    resume: bool,
    print_config: bool,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Train one MLP on MNIST and write its run folder.

    \b
    Examples:
      mnistexp train --config configs/baseline.yaml
      mnistexp train -c configs/label_smoothing.yaml --set targets.epsilon=0.05 --seed 1
      mnistexp train -c configs/baseline.yaml --set model.hidden=[256,128] --print-config
      mnistexp train -c configs/baseline.yaml --set train.checkpoint_every=1 --resume
    """
    from mnistexp.config.loading import to_yaml
    from mnistexp.store.runs import find_run

    cfg = api.run_config(
        config_path, overrides, seed=seed, name=name, runs_dir=runs_dir, data_dir=data_dir
    )
    folder = find_run(cfg, runs_dir)  # the experiment's folder, whatever its name
    if print_config:
        click.echo(f"# run folder: {folder}")
        click.echo(to_yaml(cfg, block=True), nl=False)
        return
    progress = not (no_progress or as_json) and sys.stdout.isatty() and sys.stderr.isatty()
    try:
        with stop_signals_as_interrupt():
            result = api.train_run(
                cfg,
                runs_dir=runs_dir,
                data_dir=data_dir,
                force=force,
                retry_failed=retry_failed,
                resume=resume,
                progress=progress,
                argv=sys.argv,
            )
    except KeyboardInterrupt as exc:
        click.echo(_interrupted_line(folder), err=True)
        sys.exit(interrupt_exit_code(exc))
    if as_json:
        click.echo(json.dumps(_json_summary(result), sort_keys=True))
    else:
        _print_summary(result)
    sys.exit(result.exit_code)


def _interrupted_line(folder: Path) -> str:
    """Where the interrupted run in ``folder`` stands and how to go on."""
    from mnistexp.store import runs

    status = runs.read_status(folder) or {}
    done, saved = status.get("epochs_done", 0), status.get("checkpoint_epoch")
    how = (
        f"--resume continues from the checkpoint of epoch {saved}"
        if saved
        else "run again to retrain"
    )
    return (
        f"{folder}: interrupted after {done} finished epoch(s); the run is marked "
        f"'interrupted'; {how}"
    )


def _json_summary(result: api.RunResult) -> dict[str, Any]:
    """The object of ``--json``: the result's fields, the metrics' numbers only."""
    metrics = None
    if result.metrics:
        metrics = {
            section: {k: v for k, v in values.items() if isinstance(v, int | float)}
            for section, values in result.metrics.items()
            if isinstance(values, dict) and section != "conventions"
        }
    message = result.message
    if result.elsewhere and not result.skipped:
        message = "; ".join(filter(None, [api.ELSEWHERE_RETRAINED, message]))
    return {
        "run_dir": str(result.run_dir),
        "state": result.state,
        "skipped": result.skipped,
        "message": message,
        "metrics": metrics,
    }


def _print_summary(result: api.RunResult) -> None:
    where = str(result.run_dir)
    if result.skipped:
        hint = api.skip_hint(result.state, result.elsewhere)
        click.echo(f"{where}: {hint}", err=result.state not in (State.COMPLETED, State.RUNNING))
    elif result.state == State.COMPLETED:
        notes = [api.ELSEWHERE_RETRAINED if result.elsewhere else None, result.message]
        extra = "; ".join(filter(None, notes))
        click.echo(
            f"{where}: completed in {result.seconds:.1f} s" + (f" ({extra})" if extra else "")
        )
    else:
        click.echo(f"{where}: {result.state}: {result.message}", err=True)
    if result.metrics and result.metrics.get("test"):
        for line in summary_lines(result.metrics):
            click.echo(line)
        for problem in fit_problems(result.metrics):
            click.echo(f"warning: {where}: {problem}", err=True)


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The test metrics, then one line per recalibration map of ``eval.recalibration`` (each
    fitted on validation, applied to test), then a footnote defining the abbreviations."""
    lines = [_metrics_line("test", metrics["test"])]
    maps = dict(metrics.get("test_recalibrated") or {})
    scaled = metrics.get("test_temperature_scaled")
    if isinstance(scaled, dict):  # temperature's section, the same as maps["temperature"]
        maps = {"temperature": scaled, **{k: v for k, v in maps.items() if k != "temperature"}}
    temperature = fitted = False
    for method, section in maps.items():
        if not isinstance(section, dict):
            continue
        if "ece" not in section:
            why = section.get("skipped", "no test metrics")
            lines.append(f"  after {method}: skipped ({why})")
            continue
        label = f"after {method}"
        if isinstance(section.get("temperature"), int | float):
            label += f" (T={section['temperature']:.3g})"
            temperature = True
        lines.append(_metrics_line(label, section))
        fitted = True
    bins = (metrics.get("conventions") or {}).get("bins")
    terms = [
        "NLL = negative log-likelihood (nats)",
        "ECE = expected calibration error"
        + (f" ({bins} equal-width bins)" if isinstance(bins, int) else ""),
        *(["T = the fitted temperature"] if temperature else []),
    ]
    if fitted:
        terms.append("each map fitted on the validation split, applied to test")
    lines.append("  " + "; ".join(terms))
    return lines


def _metrics_line(label: str, m: dict[str, Any]) -> str:
    return (
        f"  {label}: accuracy {100 * m['accuracy']:.2f}%  NLL {m['nll'] + 0.0:.4f}  "
        f"Brier {m['brier']:.4f}  ECE {100 * m['ece']:.2f}%"
    )
