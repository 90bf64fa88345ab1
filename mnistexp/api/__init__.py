"""The Python API: train runs, load run folders and compare experiments from a notebook.

Three functions the command line is built on: ``mnistexp train`` and ``mnistexp compare`` run
their steps (:func:`run_config` and :func:`train_run`; :func:`gather_runs` and
:func:`build_comparison`, not in ``__all__``) between their own checks and output, so the
validation and the one-line messages are the same (every bad input is a
:class:`~mnistexp.core.errors.UsageError` subclass, whose text is what ``mnistexp`` prints
after ``Error:``):

- :func:`train` is ``mnistexp train``: one run, one folder, a :class:`RunResult`;
- :func:`load_runs` reads run folders into :class:`Runs`, one record per run;
- :func:`compare` is ``mnistexp compare``: a :class:`Comparison` holding the very report the
  command renders, so ``compare(...).render("markdown")`` is the command's output.

``import mnistexp`` stays cheap (no numpy): these names are re-exported lazily by the
package, and the heavy modules are imported inside the functions, as the CLI does.
``mnistexp.compare`` is this module's :func:`compare`; the deprecated flat path of mnistexp
0.1, ``import mnistexp.compare`` (now :mod:`mnistexp.analysis.compare`), still imports that
module with a warning and, as Python binds an imported submodule to its package, rebinds
``mnistexp.compare`` to it until the path goes away in 0.3. ``mnistexp.api.compare`` is
never rebound.

DataFrames need pandas, the optional extra ``pandas`` (``pip install 'mnistexp[pandas]'``);
without it ``to_records()`` gives the same rows as a list of dicts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from mnistexp.core.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mnistexp.analysis.columns import Metric
    from mnistexp.analysis.compare import Experiment, Report
    from mnistexp.analysis.rundirs import RunRecord
    from mnistexp.config.loading import ExperimentConfig

__all__ = [
    "Comparison",
    "MissingExtra",
    "RunResult",
    "Runs",
    "compare",
    "load_runs",
    "train",
]

PathLike = str | Path
Inputs = PathLike | Sequence[PathLike]
CONFIG_SUFFIXES = (".yaml", ".yml")  # as ``mnistexp compare`` tells config files from runs
FORMATS = ("table", "markdown", "latex", "csv", "json")


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


# --------------------------------------------------------------------------- train


@dataclass(frozen=True)
class RunResult:
    """What :func:`train` did: the fields of ``mnistexp train --json``.

    Attributes:
        run_dir: the run folder, ``<runs root>/<name>-<hash8>-s<seed>``.
        state: ``completed``, ``failed``, ``diverged``, ``interrupted``, or ``running`` when
            another live process owns the folder.
        skipped: True when a run already there was left as it was (no training).
        metrics: the run's ``metrics.json`` (sections ``test``, ``validation``, ``train``,
            ``test_temperature_scaled``, ...), or None when the run has none.
        message: why a run failed, diverged or was skipped, or how it was resumed.
        seconds: training time of this call (0 when skipped).
        elsewhere: the folder is that of the same experiment (config hash and seed) under
            another name, reused or retrained there rather than a second folder.
    """

    run_dir: Path
    state: str
    skipped: bool
    metrics: dict[str, Any] | None
    message: str | None
    seconds: float = 0.0
    elsewhere: bool = False

    @property
    def ok(self) -> bool:
        """True when the run is completed (trained now or before) or running elsewhere: the
        cases in which ``mnistexp train`` exits 0."""
        return self.state in ("completed", "running")

    @property
    def exit_code(self) -> int:
        """The exit code of ``mnistexp train`` for this result: 0 when :attr:`ok`, 130 when
        interrupted, 1 when failed or diverged."""
        from mnistexp.orchestration.experiment import Outcome

        return int(Outcome(self.run_dir, self.state).exit_code)


def train(
    config: PathLike | Mapping[str, Any] | None = None,
    *,
    overrides: Sequence[str] = (),
    runs_dir: PathLike | None = None,
    data_dir: PathLike | None = None,
    seed: int | None = None,
    force: bool = False,
    name: str | None = None,
    retry_failed: bool = False,
    resume: bool = False,
    progress: bool = False,
) -> RunResult:
    """Train one MLP and write its run folder, as ``mnistexp train`` does.

    A finished run is not retrained (``force=True`` retrains it); an interrupted one is.
    A run that fails or diverges is a result, not an exception: see ``state`` and
    ``message``. Ctrl-C (a notebook's interrupt) marks the run ``interrupted`` and raises
    KeyboardInterrupt.

    Args:
        config: a YAML file, a dict of settings (nested sections, ``{"train": {"lr": 0.05}}``,
            or dotted keys, ``{"train.lr": 0.05}``), or None for the defaults.
        overrides: ``key=value`` strings applied after ``config``, values as YAML, as
            ``--set`` takes them: ``["model.hidden=[256,128]"]``.
        runs_dir: the runs root (default: ``MNISTEXP_RUNS_DIR``, else ``./runs``).
        data_dir: the folder with the MNIST files (default: the config's ``data.dir``,
            ``MNISTEXP_DATA_DIR``, the cache).
        seed: shorthand for the override ``seed=N``.
        force: retrain even a completed run.
        name: shorthand for the override ``name=NAME`` (the run folder's name).
        retry_failed: retrain a run that failed or diverged.
        resume: continue an interrupted run from its last checkpoint
            (``train.checkpoint_every``) instead of starting over.
        progress: show a progress bar on stderr.

    Returns:
        The run folder, its state and its metrics.

    Raises:
        UsageError: bad input, with the CLI's one-line message (``ConfigError`` for the
            config, ``DataError`` for the MNIST files, ``RunError`` for the runs folder);
            nothing is written under the runs folder then.

    Example:
        ```python
        from mnistexp import train

        result = train("configs/baseline.yaml", overrides=["train.epochs=2"], seed=1)
        result.run_dir                        # runs/baseline-<hash8>-s1
        result.metrics["test"]["accuracy"]    # a fraction, e.g. 0.96
        ```
    """
    cfg = run_config(config, overrides, seed=seed, name=name, runs_dir=runs_dir, data_dir=data_dir)
    return train_run(
        cfg,
        runs_dir=runs_dir,
        data_dir=data_dir,
        force=force,
        retry_failed=retry_failed,
        resume=resume,
        progress=progress,
        argv=["mnistexp.api.train", *_describe(config), *overrides],
    )


# The steps of train and compare, for callers that show the work themselves (the command line
# calls them between its own checks and output); not part of the documented API (__all__).


def check_paths(runs_dir: PathLike | None, data_dir: PathLike | None) -> None:
    """What ``train``, ``compare`` and ``sweep`` check before any work, with their messages:
    the runs folder (``runs_dir`` or ``MNISTEXP_RUNS_DIR``) and the data folder are names the
    filesystem can hold, ``MNISTEXP_LEASE_SECONDS`` is a number."""
    from mnistexp.core.paths import check_names
    from mnistexp.store.liveness import lease_seconds
    from mnistexp.store.runs import runs_root

    runs_root(runs_dir)
    lease_seconds()
    if data_dir is not None:
        check_names(data_dir, "--data-dir")


def run_config(
    config: PathLike | Mapping[str, Any] | None,
    overrides: Sequence[str] = (),
    *,
    seed: int | None = None,
    name: str | None = None,
    runs_dir: PathLike | None = None,
    data_dir: PathLike | None = None,
) -> ExperimentConfig:
    """The validated config of one run, after :func:`check_paths`: ``config`` (a file, a dict
    or None), then ``overrides``, then ``seed`` and ``name`` (``--seed``, ``--name``)."""
    check_paths(runs_dir, data_dir)
    extra = [f"seed={seed}"] if seed is not None else []
    extra += [f"name={name}"] if name is not None else []
    return _load(config, [*overrides, *extra])


def train_run(
    cfg: ExperimentConfig,
    *,
    runs_dir: PathLike | None = None,
    data_dir: PathLike | None = None,
    force: bool = False,
    retry_failed: bool = False,
    resume: bool = False,
    progress: bool = False,
    argv: Sequence[str] = (),
) -> RunResult:
    """Train ``cfg`` into its run folder unless a finished run is there (the work of
    :func:`train`); ``argv`` is the command env.json records."""
    from mnistexp.orchestration.experiment import run_experiment
    from mnistexp.store.runs import run_name

    outcome = run_experiment(
        cfg,
        runs_dir=runs_dir,
        data_dir=data_dir,
        force=force,
        retry_failed=retry_failed,
        resume=resume,
        progress=progress,
        argv=list(argv),
    )
    elsewhere = outcome.run_dir.name != run_name(cfg)
    message = outcome.message
    if message is None and outcome.skipped:
        message = skip_hint(outcome.state, elsewhere)
    return RunResult(
        outcome.run_dir,
        outcome.state,
        outcome.skipped,
        outcome.metrics,
        message,
        outcome.seconds,
        elsewhere,
    )


def _load(config: PathLike | Mapping[str, Any] | None, overrides: Sequence[str]):
    """The validated config: a file read as ``--config`` reads it, or a dict applied as
    ``--set`` overrides of its top-level keys (so its messages are those of ``--set``)."""
    from mnistexp.config.loading import load_config

    if config is None or isinstance(config, str | Path):
        return load_config(config, overrides)
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"config must be a YAML file, a dict or None, not {type(config).__name__}"
        )
    settings = []
    for key, value in config.items():
        if not isinstance(key, str) or "=" in key:
            raise ConfigError(f"config key {key!r}: expected a key name such as 'train'")
        settings.append(f"{key}={json.dumps(value, default=str)}")  # JSON is YAML
    return load_config(None, [*settings, *overrides])


def _describe(config: PathLike | Mapping[str, Any] | None) -> list[str]:
    """The config part of the call as env.json records it (a dict's keys are in config.yaml)."""
    if config is None:
        return []
    return ["--config", str(config)] if isinstance(config, str | Path) else ["<dict>"]


ELSEWHERE = "the same experiment (config hash and seed) under another name"
ELSEWHERE_RETRAINED = f"retrained in the folder of {ELSEWHERE}"


def skip_hint(state: str, elsewhere: bool = False) -> str:
    """Why a run was left alone and how to retrain it, the text of ``mnistexp train``;
    ``elsewhere``: the folder is that of the same experiment under another name
    (:func:`mnistexp.store.runs.find_run`)."""
    from mnistexp.core.states import State

    if elsewhere and state == State.COMPLETED:
        return f"reused {ELSEWHERE}, already completed; not retrained (--force retrains it here)"
    if elsewhere and state == State.RUNNING:
        return f"{ELSEWHERE} is being trained by another process; left alone"
    hints: dict[str, str] = {
        State.COMPLETED: "already completed; not retrained (--force retrains)",
        State.RUNNING: "is being trained by another process; left alone",
    }
    return hints.get(state, f"{state} earlier; not retrained (--retry-failed retrains)")


# --------------------------------------------------------------------------- loading runs


class Runs(Sequence["RunRecord"]):
    """Run records as ``mnistexp compare`` reads them, a read-only list.

    Each item is a :class:`~mnistexp.analysis.rundirs.RunRecord`: ``path``, ``name``,
    ``seed``, ``chash`` (the config hash), ``state`` (completed or diverged), ``config``
    (flattened, dotted keys) and ``values`` (test metrics by their ``--metrics`` names, raw
    fractions, NaN where absent). Folders that could not be used are left out, each with one
    line in :attr:`warnings`.
    """

    def __init__(self, records: Sequence[RunRecord], warnings: Sequence[str] = ()) -> None:
        self._records = list(records)
        self.warnings: list[str] = list(warnings)
        """One line per folder left out or damaged, as compare prints them."""

    @overload
    def __getitem__(self, index: int) -> RunRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Runs: ...

    def __getitem__(self, index: int | slice) -> RunRecord | Runs:
        if isinstance(index, slice):
            return Runs(self._records[index], self.warnings)
        return self._records[index]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self._records)

    def __repr__(self) -> str:
        return f"<Runs: {len(self)} runs, {len(self.warnings)} warnings>"

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per run: ``run_dir``, ``name``, ``seed``, ``state``, ``config_hash``,
        every metric (raw fractions; a run's bootstrap bounds as ``<metric>_boot_low`` and
        ``_boot_high``; NaN where absent) and every config key, dotted.

        Example:
            ```python
            rows = load_runs("runs").to_records()
            best = max(rows, key=lambda row: row["accuracy"])
            ```
        """
        return [_run_row(r) for r in self._records]

    def to_frame(self) -> Any:
        """The rows of :meth:`to_records` as a pandas DataFrame.

        Raises:
            MissingExtra: pandas is not installed (an ImportError naming the extra).

        Example:
            ```python
            frame = load_runs("runs/baseline-*").to_frame()
            frame.groupby("name")["ece"].describe()
            ```
        """
        return _pandas().DataFrame.from_records(self.to_records())


def _run_row(record: RunRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_dir": str(record.path),
        "name": record.name,
        "seed": record.seed,
        "state": record.state,
        "config_hash": record.chash,
    }
    row |= {key.replace(":", "_"): value for key, value in record.values.items()}
    row |= {key: value for key, value in record.config.items() if key not in row}
    return row


def load_runs(paths: Inputs | None = None, *, runs_dir: PathLike | None = None) -> Runs:
    """Read run folders as ``mnistexp compare`` does: completed and diverged runs.

    Args:
        paths: run folders, globs (``"runs/baseline-*"``) or runs roots, one or a list;
            None: every run under the runs root.
        runs_dir: the runs root for ``paths=None`` (default: ``MNISTEXP_RUNS_DIR``, else
            ``./runs``).

    Returns:
        The runs, with one warning line per folder left out.

    Raises:
        UsageError: a path that names no run folder, or an empty runs root (the CLI's lines).

    Example:
        ```python
        from mnistexp import load_runs

        runs = load_runs(["runs/baseline-*", "runs/label_smoothing-*"])
        len(runs), runs.warnings
        runs.to_frame()[["name", "seed", "accuracy", "ece"]]
        ```
    """
    from mnistexp.analysis.rundirs import collect_folders
    from mnistexp.analysis.rundirs import load_runs as read_folders
    from mnistexp.store.runs import runs_root

    folders = collect_folders(_as_list(paths), runs_root(runs_dir))
    records, notes = read_folders(folders)
    return Runs(records, notes)


def _as_list(paths: Inputs | None) -> list[str]:
    if paths is None:
        return []
    if isinstance(paths, str | Path):
        return [str(paths)]
    return [str(p) for p in paths]


# --------------------------------------------------------------------------- comparing


class Comparison:
    """A comparison of experiments: the report ``mnistexp compare`` renders, and its views.

    Attributes:
        report: the :class:`~mnistexp.analysis.compare.Report` itself (experiments, metrics,
            the config keys that differ, the tests against the baseline, warnings).
    """

    def __init__(self, report: Report) -> None:
        self.report = report

    @property
    def warnings(self) -> list[str]:
        """The lines ``mnistexp compare`` prints as ``warning:`` (folders left out, ...)."""
        return list(self.report.warnings)

    @property
    def experiments(self) -> list[Experiment]:
        """The experiments, in the table's order (each with its runs by seed)."""
        return list(self.report.experiments)

    def __repr__(self) -> str:
        return self.render("table")

    def _repr_markdown_(self) -> str:
        """How a notebook shows a comparison: the markdown tables."""
        return self.render("markdown")

    def render(self, fmt: str = "table") -> str:
        """The comparison as ``mnistexp compare --format FMT`` prints it, the same text.

        Args:
            fmt: ``table``, ``markdown``, ``latex``, ``csv`` or ``json``.

        Example:
            ```python
            print(compare("runs").render("latex"))
            ```
        """
        from mnistexp.analysis.report import render

        if fmt not in FORMATS:
            raise UsageError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return render(self.report, fmt)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per experiment with the columns of ``--format csv``, numbers as floats
        (NaN where there is none): ``experiment``, ``config_hash``, the differing config
        keys, ``n``, ``diverged``, ``seeds`` (a list), and per metric ``<m>_mean``,
        ``<m>_std``, ``<m>_ci95_low``, ``<m>_ci95_high``; against a baseline also
        ``<m>_diff``, ``<m>_diff_ci95_low``, ``<m>_diff_ci95_high``, ``<m>_p``,
        ``<m>_p_adjusted`` and ``<m>_test`` (``baseline`` in the baseline's row).

        Example:
            ```python
            rows = compare("runs", baseline="baseline").to_records()
            [(row["experiment"], row["ece_mean"]) for row in rows]
            ```
        """
        return [_experiment_row(self.report, e) for e in self.report.experiments]

    def to_frame(self) -> Any:
        """The rows of :meth:`to_records` as a pandas DataFrame.

        Raises:
            MissingExtra: pandas is not installed (an ImportError naming the extra).

        Example:
            ```python
            frame = compare("runs", metrics=["accuracy", "ece"]).to_frame()
            frame.set_index("experiment")[["accuracy_mean", "ece_mean"]]
            ```
        """
        return _pandas().DataFrame.from_records(self.to_records())

    def figures(self, curves: Sequence[str] = ()) -> dict[str, Figure]:
        """The figures of ``compare --plot``, as matplotlib Figures; no file is written.

        Keys, for the figures that have data: ``reliability`` (one reliability diagram per
        experiment), ``reliability_ts`` (after temperature scaling), ``confidence``,
        ``learning_curves``, ``metrics`` (bars with 95% intervals), and ``curves`` when
        ``curves`` names history.csv columns (``["grad_true", "saturated"]``).

        The figures are detached from pyplot (no window, none shown twice in a notebook);
        show one with ``display(fig)`` in a notebook, save it with ``fig.savefig(...)``.

        Example:
            ```python
            figures = compare("runs", baseline="baseline").figures()
            figures["reliability"].savefig("reliability.pdf")
            ```
        """
        from mnistexp.analysis.plots import parse_curves

        if curves:
            parse_curves(",".join(curves))  # unknown columns: the CLI's one line
        drawn: dict[str, Figure] = {}
        for name, draw in _figure_plan(self.report, curves).items():
            drawn[name] = draw()
            from matplotlib import pyplot  # imported by the drawing, with its Agg backend

            pyplot.close(drawn[name])  # the Figure stays usable; pyplot forgets it
        return drawn


def _figure_plan(report: Report, curves: Sequence[str]) -> dict[str, Any]:
    """Figure name -> a function drawing it, for the figures with data, in the order and
    by the tests of ``compare --plot`` (which skips the others with a line)."""
    from mnistexp.analysis import plots

    exps = report.experiments
    bins = any(plots.pooled_bins(e) is not None for e in exps)
    plan: dict[str, Any] = {}
    if bins:
        plan["reliability"] = lambda: plots.reliability_figure(exps)
    if any(r.reliability_ts for e in exps for r in e.runs):
        plan["reliability_ts"] = lambda: plots.reliability_figure(exps, scaled=True)
    if bins:
        plan["confidence"] = lambda: plots.confidence_figure(exps)
    if _has_history(exps, plots.LEARNING_CURVES):
        plan["learning_curves"] = lambda: plots.learning_curves_figure(exps)
    if any(math.isfinite(e.summary(m.key).mean) for e in exps for m in report.metrics):
        plan["metrics"] = lambda: plots.metrics_figure(report)
    if curves and _has_history(exps, curves):
        plan["curves"] = lambda: plots.curves_figure(exps, curves)
    return plan


def _has_history(experiments: Sequence[Experiment], columns: Sequence[str]) -> bool:
    import numpy as np

    from mnistexp.analysis.plots import learning_curve

    return any(np.any(np.isfinite(learning_curve(e, c)[1])) for e in experiments for c in columns)


def _experiment_row(report: Report, exp: Experiment) -> dict[str, Any]:
    nan = math.nan
    row: dict[str, Any] = {"experiment": exp.name, "config_hash": exp.chash}
    row |= {key: exp.config.get(key) for key in report.keys}
    row |= {"n": len(exp.runs), "diverged": len(exp.diverged), "seeds": exp.seeds}
    found = {(c.experiment, c.metric): c for c in report.comparisons}
    for m in report.metrics:
        s = exp.summary(m.key)
        values = (s.mean, s.std, s.ci_low, s.ci_high)
        row |= {f"{m.key}_{k}": v for k, v in zip(_SUMMARY, values, strict=True)}
        if not report.comparisons:
            continue
        c = found.get((exp.name, m.key))
        low, high = (c.interval or (nan, nan)) if c else (nan, nan)
        p, adjusted = (c.p_value, c.p_adjusted) if c else (None, None)
        row |= {
            f"{m.key}_diff": c.difference if c else nan,
            f"{m.key}_diff_ci95_low": low,
            f"{m.key}_diff_ci95_high": high,
            f"{m.key}_p": nan if p is None else p,
            f"{m.key}_p_adjusted": nan if adjusted is None else adjusted,
            f"{m.key}_test": c.test if c else "baseline",
        }
    return row


_SUMMARY = ("mean", "std", "ci95_low", "ci95_high")


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


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise MissingExtra(
            "to_frame() needs pandas, the optional extra 'pandas': "
            "pip install 'mnistexp[pandas]' (to_records() gives the same rows as dicts)"
        ) from None
    return pandas
