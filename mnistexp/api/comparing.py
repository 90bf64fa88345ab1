"""``compare``: experiments compared over seeds, as ``mnistexp compare`` does, and the steps
the command calls (:func:`gather_runs`, :func:`build_comparison`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from mnistexp.api.common import Inputs, PathLike, _as_list, check_paths
from mnistexp.api.comparison import Comparison
from mnistexp.api.loading import Runs
from mnistexp.core.errors import UsageError

if TYPE_CHECKING:
    from mnistexp.analysis.columns import Metric
    from mnistexp.config.loading import ExperimentConfig

CONFIG_SUFFIXES = (".yaml", ".yml")  # as ``mnistexp compare`` tells config files from runs


def compare(
    inputs: Inputs | Runs | None = None,
    *,
    baseline: str | None = None,
    metrics: str | Sequence[str] | None = None,
    filters: Sequence[str] = (),
    sort: str | None = None,
    seeds: str | int | Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    jobs: int = 1,
    runs_dir: PathLike | None = None,
    data_dir: PathLike | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    interval: bool = False,
    progress: bool = False,
) -> Comparison:
    """Compare experiments over seeds, as ``mnistexp compare`` does, with its options.

    Args:
        inputs: run folders, globs, runs roots or config files (``.yaml``), one or a list,
            or the :class:`Runs` of :func:`load_runs`; None: every run under the runs root.
            For config files the missing runs (the seeds of ``seeds``) are trained first.
        baseline: test every other experiment against this one (a label or a prefix of one).
        metrics: the columns, ``"accuracy,ece"`` or ``["accuracy", "ece"]`` (default:
            accuracy, nll, brier, ece, ts_ece, confidence).
        filters: ``key=value`` strings; keep experiments whose config matches every one.
        sort: sort rows by this metric, best first.
        seeds: with config files, which seeds of each, as ``--seeds`` reads them: ``"0-4"``,
            ``"0,2,5"``, a list, or one seed (``3`` or ``"3"``); default ``"0-2"``, as the CLI.
        overrides: ``key=value`` settings applied to every config file.
        jobs: with config files, parallel training workers.
        runs_dir: the runs root (default: ``MNISTEXP_RUNS_DIR``, else ``./runs``).
        data_dir: the MNIST folder for training missing runs.
        alpha: significance level of the verdicts.
        correction: ``holm``, ``bh`` or ``none``, across all tests of the table.
        interval: table and markdown show the 95% interval in every cell.
        progress: with config files, report training progress on stderr.

    Returns:
        The comparison; ``render(fmt)`` gives the command's text.

    Raises:
        UsageError: bad input, with the CLI's one-line message; also when ``baseline`` is
            the only experiment (the CLI prints the table, then that error).

    Example:
        ```python
        from mnistexp import compare

        result = compare(
            ["configs/baseline.yaml", "configs/label_smoothing.yaml"],
            seeds="0-1", overrides=["train.epochs=1"], baseline="baseline",
        )
        print(result.render("markdown"))
        result.figures()["reliability"]
        ```
    """
    from mnistexp.analysis.columns import parse_metrics

    check_paths(runs_dir, data_dir)
    if metrics is not None and not isinstance(metrics, str):
        metrics = ",".join(metrics)
    chosen = parse_metrics(metrics)
    runs = gather_runs(
        inputs,
        seeds=seeds,
        overrides=overrides,
        jobs=jobs,
        runs_dir=runs_dir,
        data_dir=data_dir,
        progress=progress,
    )
    result = build_comparison(
        runs,
        chosen,
        baseline=baseline,
        filters=filters,
        sort=sort,
        alpha=alpha,
        correction=correction,
        interval=interval,
    )
    if result.report.nothing_to_compare:
        raise UsageError(result.report.nothing_to_compare)
    return result


SET_WITHOUT_CONFIGS = "--set applies to config files given as inputs; none was given"


def gather_runs(
    inputs: Inputs | Runs | None = None,
    *,
    seeds: str | int | Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    jobs: int = 1,
    runs_dir: PathLike | None = None,
    data_dir: PathLike | None = None,
    progress: bool = False,
    shift: bool = False,
    announce: Callable[[str], None] | None = None,
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Runs:
    """The runs :func:`compare` compares (its arguments of the same names): config files are
    trained first where runs are missing, then every folder is read, ``shift.json`` too with
    ``shift``. ``announce`` is handed the line saying how many runs the config files make and
    where, before training; training runs inside ``guard()`` (the CLI's stop signals)."""
    if isinstance(inputs, Runs):
        if overrides:
            raise UsageError(SET_WITHOUT_CONFIGS)
        return inputs
    from mnistexp.analysis.rundirs import load_runs as read_folders

    folders = _folders(
        _as_list(inputs), runs_dir, seeds, jobs, overrides, data_dir, progress, announce, guard
    )
    return Runs(*read_folders(folders, shift=shift))


def build_comparison(
    runs: Runs,
    metrics: Sequence[Metric],
    *,
    baseline: str | None = None,
    filters: Sequence[str] = (),
    sort: str | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    interval: bool = False,
    latex_width: str = "column",
    latex_label: str | None = None,
    label_keys: Sequence[str] | None = None,
) -> Comparison:
    """The comparison of ``runs`` on ``metrics`` (parsed by
    :func:`~mnistexp.analysis.columns.parse_metrics`), the other options those of
    :func:`compare` and of ``--latex-width``, ``--latex-label``, ``--label``; unlike
    :func:`compare` it returns a report with nothing to compare (the CLI prints the table
    before that error)."""
    from mnistexp.analysis.compare import build_report

    report = build_report(
        list(runs),
        list(metrics),
        sort=sort,
        filters=filters,
        baseline=baseline,
        alpha=alpha,
        notes=runs.warnings,
        correction=correction,
        interval=interval,
        latex_width=latex_width,
        latex_label=latex_label,
        label_keys=label_keys,
    )
    return Comparison(report)


def _folders(
    inputs: list[str],
    runs_dir: PathLike | None,
    seeds: str | int | Sequence[int] | None,
    jobs: int,
    overrides: Sequence[str],
    data_dir: PathLike | None,
    progress: bool,
    announce: Callable[[str], None] | None,
    guard: Callable[[], AbstractContextManager[object]],
) -> list[Path]:
    """Run folders to compare; config files are trained first where runs are missing (the
    steps and messages of ``mnistexp compare``)."""
    from mnistexp.analysis.rundirs import collect_folders
    from mnistexp.orchestration.planning import plan_runs, train_missing
    from mnistexp.orchestration.sweep import parse_seeds
    from mnistexp.store.runs import runs_root

    configs = [i for i in inputs if Path(i).suffix in CONFIG_SUFFIXES]
    others = [i for i in inputs if i not in configs]
    if overrides and not configs:
        raise UsageError(SET_WITHOUT_CONFIGS)
    seed_list = parse_seeds((seeds,) if isinstance(seeds, int) else seeds or "0-2")
    if jobs < 1:
        raise UsageError(f"jobs = {jobs} is invalid: must be >= 1")
    folders = collect_folders(others, runs_root(runs_dir)) if others or not configs else []
    if configs:
        planned: list[ExperimentConfig] = plan_runs(configs, seed_list, overrides)
        if announce is not None:
            announce(
                f"{len(planned)} runs ({len(configs)} configs x {len(seed_list)} seeds) in "
                f"{runs_root(runs_dir)}; finished runs are reused"
            )
        with guard():
            folders += train_missing(
                planned, jobs=jobs, runs_dir=runs_dir, data_dir=data_dir, progress=progress
            )
    return list(dict.fromkeys(folders))
