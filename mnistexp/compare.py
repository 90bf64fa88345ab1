"""Compare experiments: load run folders, group seeds by config hash, aggregate, test, render.

Data flow: input paths -> run folders (:func:`collect_folders`) -> :class:`RunRecord` per folder
(:func:`load_runs`; unusable folders become one warning line each) -> :class:`Experiment` per
config hash, seed excluded (:func:`group_runs`) -> :class:`Report` (:func:`build_report`) ->
text (:mod:`mnistexp.report`, pure: a report in, a string out).

Statistics (per experiment and metric, over seeds): mean, sample standard deviation (ddof 1)
and the 95% Student-t interval mean +- t(0.975, n-1) * std / sqrt(n). Against a baseline
(:func:`compare_metric`): a paired t-test on the seeds both experiments share when they share
at least two; otherwise Welch's t-test when both have at least two seeds; otherwise, for
accuracy only, McNemar's exact test (a binomial test on the discordant test images) on one
pair of runs' predictions. The test used is part of every :class:`Comparison`.

The experiment's identity is recomputed from each folder's config.yaml
(:func:`mnistexp.config.config_hash`), so renamed folders or stale status files cannot split or
merge experiments.
"""

from __future__ import annotations

import glob
import json
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistexp import runs
from mnistexp.config import (
    IDENTITY_EXCLUDED,
    ExperimentConfig,
    all_keys,
    config_hash,
    load_config,
    normalised,
    parse_override,
    read_stored,
)
from mnistexp.config import flatten as flatten_dict
from mnistexp.errors import ConfigError, RunError, UsageError

JSON_SCHEMA_VERSION = 1
HIDDEN_KEYS = IDENTITY_EXCLUDED
"""Config keys never shown as columns: the ones left out of a run's identity."""


# --------------------------------------------------------------------------- metrics registry


@dataclass(frozen=True)
class Metric:
    """A column: where its value lives in metrics.json and how it is shown."""

    key: str  # the name used by --metrics / --sort
    label: str  # column header without unit
    section: str  # metrics.json section
    field: str  # key inside the section
    percent: bool = False  # a fraction shown in percent; differences in percentage points
    higher_is_better: bool | None = False  # None: neither (e.g. mean confidence)
    unit: str = ""  # unit of a non-percent metric, e.g. nats

    @property
    def header(self) -> str:
        unit = "%" if self.percent else self.unit
        return f"{self.label} ({unit})" if unit else self.label

    def shown(self, value: float) -> float:
        """The value in display units (percent for fractions)."""
        return 100.0 * value if self.percent else value

    @property
    def digits(self) -> int:
        return 2 if self.percent else 4


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("accuracy", "accuracy", "test", "accuracy", percent=True, higher_is_better=True),
        Metric("nll", "NLL", "test", "nll", unit="nats"),
        Metric("brier", "Brier", "test", "brier"),
        Metric("ece", "ECE", "test", "ece", percent=True),
        Metric("ts_ece", "ECE after TS", "test_temperature_scaled", "ece", percent=True),
        Metric("ts_nll", "NLL after TS", "test_temperature_scaled", "nll", unit="nats"),
        Metric("mce", "MCE", "test", "mce", percent=True),
        Metric("ace", "adaptive ECE", "test", "ace", percent=True),
        Metric(
            "confidence",
            "mean confidence",
            "test",
            "mean_confidence",
            percent=True,
            higher_is_better=None,
        ),
        Metric(
            "temperature",
            "TS temperature",
            "test_temperature_scaled",
            "temperature",
            higher_is_better=None,
        ),
        # Validation metrics choose hyperparameters (e.g. a learning rate) without touching test.
        Metric(
            "val_accuracy",
            "validation accuracy",
            "validation",
            "accuracy",
            percent=True,
            higher_is_better=True,
        ),
        Metric("val_nll", "validation NLL", "validation", "nll", unit="nats"),
    )
}
DEFAULT_METRICS = ("accuracy", "nll", "brier", "ece", "ts_ece", "confidence")


def parse_metrics(text: str | None) -> list[Metric]:
    """``"accuracy,ece"`` -> the registry entries, in that order; None -> the defaults."""
    names = [n.strip() for n in text.split(",") if n.strip()] if text else DEFAULT_METRICS
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise UsageError(
            f"--metrics {text!r}: unknown metric {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(METRICS)}"
        )
    return [METRICS[n] for n in names]


# --------------------------------------------------------------------------- finding folders


def collect_folders(inputs: Sequence[str], root: Path) -> list[Path]:
    """Run folders named by ``inputs`` (folders, globs or runs roots), else all under ``root``."""
    if not inputs:
        return _root_folders(root)
    found: dict[Path, None] = {}
    for item in inputs:
        for path in _expand(item):
            found.setdefault(path, None)
    return list(found)


def _root_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise RunError(
            f"{root}: no such runs folder; train runs first (mnistexp train) "
            "or name run folders or config files"
        )
    folders = list(runs.iter_run_folders(root))
    if not folders:
        raise RunError(f"{root}: no run folders to compare")
    return folders


def _expand(item: str) -> list[Path]:
    """One input: a run folder, a runs root (its run folders) or a glob of either."""
    paths = [Path(p) for p in sorted(glob.glob(item))] if glob.has_magic(item) else [Path(item)]
    if not paths:
        raise RunError(f"{item}: matches no run folder")
    out: list[Path] = []
    for path in paths:
        if runs.is_run_folder(path):
            out.append(path)
        elif path.is_dir():
            out += list(runs.iter_run_folders(path))
        elif not glob.has_magic(item):
            raise RunError(f"{item}: no such run folder, runs root or config file")
    return out


# --------------------------------------------------------------------------- loading runs


@dataclass
class RunRecord:
    """One run folder as compare sees it: identity, state and test metrics."""

    path: Path
    name: str
    seed: int
    chash: str
    config: dict[str, Any]  # flattened resolved config, dotted keys
    state: str
    values: dict[str, float] = field(default_factory=dict)  # metric key -> raw value or NaN
    reliability: dict[str, list] | None = None  # metrics.json test reliability bins
    reliability_ts: dict[str, list] | None = None  # ... after temperature scaling, if fitted
    notes: list[str] = field(default_factory=list)  # what a lenient config read left out


def flatten(cfg: ExperimentConfig) -> dict[str, Any]:
    """``{"data.scaling": "unit", "model.hidden": [100], ...}`` in schema order, with the keys
    that cannot change a number at their defaults (:func:`~mnistexp.config.normalised`)."""
    return flatten_dict(normalised(cfg).to_dict())


def load_runs(folders: Sequence[Path]) -> tuple[list[RunRecord], list[str]]:
    """Completed and diverged runs of ``folders``, and one warning line per folder left out.

    Diverged runs are returned (their experiments count them) but carry no metrics.
    """
    records: list[RunRecord] = []
    notes: list[str] = []
    for folder in folders:
        status = runs.read_status(folder)
        if status is None:
            notes.append(f"{folder}: status.json missing or unreadable; left out")
            continue
        state = str(status.get("state", "failed"))
        if state in ("completed", "diverged"):  # a folder with results to read
            try:
                records.append(read_run(folder, state))
                notes += records[-1].notes
            except UsageError as exc:
                notes.append(f"{exc}; left out")
                continue
        if state != "completed":  # running, interrupted or failed ones may have no config yet
            notes.append(_state_note(folder, state, status.get("error")))
    return records, notes


def _state_note(folder: Path, state: str, error: str | None) -> str:
    why = f" ({error})" if error else ""
    if state == "diverged":
        return f"{folder}: diverged{why}; counted, but left out of the statistics"
    if state == "running":
        return f"{folder}: still running; left out"
    return f"{folder}: {state}{why}; left out"


def read_run(folder: Path, state: str) -> RunRecord:
    """The :class:`RunRecord` of one folder in ``state`` (from its status.json);
    :class:`RunError` if it cannot be used at all."""
    cfg, notes = _read_config(folder)
    record = RunRecord(folder, cfg.name, cfg.seed, config_hash(cfg), flatten(cfg), state)
    record.notes = notes
    if state == "completed":
        record.values, record.reliability, record.reliability_ts = _read_metrics(
            folder / "metrics.json"
        )
    return record


def _read_config(folder: Path) -> tuple[ExperimentConfig, list[str]]:
    """The run's resolved config, read leniently (a folder of another mnistexp version still
    loads, with notes naming what no longer validates); a RunError if it is no config."""
    try:
        return read_stored(folder / "config.yaml")
    except ConfigError as exc:
        raise RunError(str(exc)) from None


def _read_metrics(
    path: Path,
) -> tuple[dict[str, float], dict[str, list] | None, dict[str, list] | None]:
    """Test metrics and the reliability bins of a metrics.json before and after temperature
    scaling (None where absent); a RunError if it has no test metrics.

    Files without ``schema_version`` (written before it existed) and older versions are read
    for the fields they have; a newer version is refused with one line, since its fields may
    mean something else. Malformed reliability bins are dropped, not passed on to the plots.
    """
    report = runs.read_json(path)
    if not isinstance(report, dict):
        raise RunError(f"{path}: not a metrics report (a JSON object was expected)")
    _check_schema(path, report.get("schema_version"))
    test = report.get("test")
    if not isinstance(test, dict) or not _is_number(test.get("accuracy")):
        raise RunError(f"{path}: no test metrics")
    values = {key: _lookup(report, m) for key, m in METRICS.items()}
    scaled = report.get("test_temperature_scaled")
    scaled_bins = scaled.get("reliability") if isinstance(scaled, dict) else None
    bins = [test.get("reliability"), scaled_bins]
    before, after = (b if _valid_bins(b) else None for b in bins)
    return values, before, after


def _check_schema(path: Path, version: Any) -> None:
    from mnistexp.metrics import SCHEMA_VERSION

    if version is None:
        return  # written before metrics.json had a version: read what is there
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunError(f"{path}: schema_version {version!r} is not a version number")
    if version > SCHEMA_VERSION:
        raise RunError(
            f"{path}: schema_version {version} is newer than this mnistexp reads "
            f"({SCHEMA_VERSION}); compare it with the mnistexp that wrote it"
        )


def _valid_bins(bins: Any) -> bool:
    """Reliability bins as metrics.py writes them: M + 1 edges, M counts, accuracies and mean
    confidences (numbers; accuracy and confidence null in empty bins)."""
    if not isinstance(bins, dict):
        return False
    edges, count = bins.get("edges"), bins.get("count")
    if not (isinstance(edges, list) and isinstance(count, list) and len(edges) >= 2):
        return False
    m = len(edges) - 1
    columns = [bins.get("accuracy"), bins.get("mean_confidence")]
    return (
        all(_is_number(v) for v in [*edges, *count])
        and len(count) == m
        and all(
            isinstance(c, list) and len(c) == m and all(v is None or _is_number(v) for v in c)
            for c in columns
        )
    )


def _lookup(report: dict[str, Any], metric: Metric) -> float:
    section = report.get(metric.section)
    value = section.get(metric.field) if isinstance(section, dict) else None
    return float(value) if value is not None and _is_number(value) else math.nan


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- experiments


@dataclass
class Experiment:
    """All runs of one config (seed excluded): completed runs by seed, and diverged ones."""

    name: str
    chash: str
    config: dict[str, Any]
    runs: list[RunRecord]  # completed, one per seed, sorted by seed
    diverged: list[RunRecord]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    def values(self, key: str) -> dict[int, float]:
        """Seed -> finite value of metric ``key``."""
        return {r.seed: r.values[key] for r in self.runs if math.isfinite(r.values[key])}

    def summary(self, key: str) -> Summary:
        return summarize(list(self.values(key).values()))


def group_runs(records: Sequence[RunRecord]) -> tuple[list[Experiment], list[str]]:
    """Experiments (by config hash, sorted by name) and warnings about duplicate seeds."""
    groups: dict[str, list[RunRecord]] = {}
    for record in sorted(records, key=lambda r: (r.seed, str(r.path))):
        groups.setdefault(record.chash, []).append(record)
    notes: list[str] = []
    experiments = [_experiment(chash, members, notes) for chash, members in groups.items()]
    clashes = Counter(e.name for e in experiments)
    for exp in experiments:
        if clashes[exp.name] > 1:  # same name, different configs: tell them apart
            exp.name = f"{exp.name}@{exp.chash[:8]}"
    return sorted(experiments, key=lambda e: e.name), notes


def _experiment(chash: str, members: list[RunRecord], notes: list[str]) -> Experiment:
    done: dict[int, RunRecord] = {}
    for record in (r for r in members if r.state == "completed"):
        if record.seed in done:
            notes.append(
                f"{record.path}: same experiment and seed as {done[record.seed].path}; left out"
            )
            continue
        done[record.seed] = record
    name = Counter(r.name for r in members).most_common(1)[0][0]
    diverged = [r for r in members if r.state == "diverged"]
    return Experiment(name, chash, members[0].config, list(done.values()), diverged)


def apply_filters(experiments: list[Experiment], filters: Sequence[str]) -> list[Experiment]:
    """Keep the experiments whose resolved config matches every ``key=value`` filter."""
    keys = all_keys()
    for item in filters:
        key, wanted = parse_override(item)
        if key not in keys:
            raise ConfigError(f"--filter {item!r}: unknown key {key}")
        experiments = [e for e in experiments if _same(e.config.get(key), wanted)]
    if not experiments:
        raise UsageError(f"no experiment matches --filter {' --filter '.join(filters)}")
    return experiments


def _same(actual: Any, wanted: Any) -> bool:
    return actual == wanted or str(actual) == str(wanted)


def differing_keys(experiments: Sequence[Experiment]) -> list[str]:
    """Config keys (schema order) whose values are not the same in every experiment."""
    out = []
    for key in all_keys():
        if key in HIDDEN_KEYS:
            continue
        seen = {json.dumps(e.config.get(key), sort_keys=True) for e in experiments}
        if len(seen) > 1:
            out.append(key)
    return out


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof 1) and 95% t-interval of one metric over n seeds."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """:class:`Summary` of ``values``; std and interval are NaN below two values."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    nan = math.nan
    if x.size == 0:
        return Summary(0, nan, nan, nan, nan)
    mean = float(x.mean())
    if x.size < 2:
        return Summary(1, mean, nan, nan, nan)
    from scipy import stats

    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * std / math.sqrt(x.size)
    return Summary(int(x.size), mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Comparison:
    """One experiment against the baseline on one metric (raw units, other minus baseline)."""

    experiment: str
    baseline: str
    metric: str
    difference: float
    p_value: float | None
    test: str
    alpha: float

    @property
    def significant(self) -> bool | None:
        return None if self.p_value is None else self.p_value < self.alpha


def compare_metric(
    base: Experiment, other: Experiment, metric: Metric, alpha: float = 0.05
) -> Comparison:
    """Difference of ``other`` to ``base`` on ``metric`` with the test the seeds allow."""
    b, o = base.values(metric.key), other.values(metric.key)
    shared = sorted(set(b) & set(o))
    if len(shared) >= 2:
        diff, p, test = _paired([b[s] for s in shared], [o[s] for s in shared])
    elif len(b) >= 2 and len(o) >= 2:
        diff, p, test = _welch(list(b.values()), list(o.values()))
    elif metric.key == "accuracy" and b and o:
        try:
            diff, p, test = mcnemar(*_one_pair(base, other, shared))
        except RunError as exc:  # a corrupt predictions.npz costs the test, not the table
            diff, p, test = _mean_difference(b, o), None, f"no test ({exc})"
    else:
        diff, p, test = _mean_difference(b, o), None, "no test (needs 2 seeds per experiment)"
    return Comparison(other.name, base.name, metric.key, diff, p, test, alpha)


def _mean_difference(base: dict[int, float], other: dict[int, float]) -> float:
    """Mean of ``other`` minus mean of ``base`` over their seeds (NaN if either is empty)."""
    if not base or not other:
        return math.nan
    return float(np.mean(list(other.values())) - np.mean(list(base.values())))


def _pvalue(test: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """scipy's p-value with its warnings about degenerate (zero-variance) data silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(test(*args, **kwargs).pvalue)


def _settle(diff: float, p: float) -> float | None:
    """A NaN p-value from zero variance: 1 when nothing differs, else undefined (None)."""
    if math.isnan(p):
        return 1.0 if diff == 0 else None
    return p


def _paired(base: list[float], other: list[float]) -> tuple[float, float | None, str]:
    from scipy import stats

    diff = float(np.mean(np.subtract(other, base)))
    p = _pvalue(stats.ttest_rel, other, base)
    return diff, _settle(diff, p), f"paired t-test, {len(base)} shared seeds"


def _welch(base: list[float], other: list[float]) -> tuple[float, float | None, str]:
    from scipy import stats

    diff = float(np.mean(other) - np.mean(base))
    p = _pvalue(stats.ttest_ind, other, base, equal_var=False)
    return diff, _settle(diff, p), f"Welch t-test, {len(base)} vs {len(other)} seeds"


def _one_pair(base: Experiment, other: Experiment, shared: list[int]) -> tuple[Path, Path]:
    """Run folders for McNemar: the shared seed if any, else each experiment's first run."""
    if shared:
        return _run_of(base, shared[0]), _run_of(other, shared[0])
    return base.runs[0].path, other.runs[0].path


def _run_of(exp: Experiment, seed: int) -> Path:
    return next(r.path for r in exp.runs if r.seed == seed)


def mcnemar(base_run: Path, other_run: Path) -> tuple[float, float | None, str]:
    """Accuracy difference and McNemar's exact p-value from two runs' test predictions.

    b = images only the baseline gets right, c = only the other; under H0 c ~ Binomial(b + c,
    1/2), so the two-sided p-value is scipy's exact binomial test.
    """
    from scipy import stats

    base_hit, labels = _hits(base_run)
    other_hit, other_labels = _hits(other_run)
    if not np.array_equal(labels, other_labels):
        return (
            float(other_hit.mean() - base_hit.mean()),
            None,
            "no test (the runs' test labels differ)",
        )
    b = int(np.sum(base_hit & ~other_hit))
    c = int(np.sum(~base_hit & other_hit))
    p = 1.0 if b + c == 0 else float(stats.binomtest(c, b + c, 0.5).pvalue)
    diff = (c - b) / labels.size
    return diff, p, f"McNemar exact test, 1 seed each ({b} vs {c} discordant)"


def _hits(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """Correct-prediction mask (n,) bool and labels (n,) from a run's predictions.npz."""
    path = run / "predictions.npz"
    try:
        arrays = runs.read_npz(path, ("predictions", "labels"))
    except runs.NPZ_ERRORS as exc:
        raise RunError(f"{path}: unreadable ({type(exc).__name__})") from None
    predictions, labels = arrays["predictions"], arrays["labels"]
    if predictions.ndim != 1 or predictions.shape != labels.shape:
        raise RunError(
            f"{path}: predictions {predictions.shape} and labels {labels.shape} do not match"
        )
    return predictions == labels, labels


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    """Everything a renderer needs; no further file access."""

    experiments: list[Experiment]
    metrics: list[Metric]
    keys: list[str]  # config keys that differ between the experiments
    baseline: str | None = None
    alpha: float = 0.05
    comparisons: list[Comparison] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    nothing_to_compare: str | None = None  # why --baseline had nothing to compare against


def build_report(
    records: Sequence[RunRecord],
    metrics: Sequence[Metric] | None = None,
    *,
    sort: str | None = None,
    filters: Sequence[str] = (),
    baseline: str | None = None,
    alpha: float = 0.05,
    notes: Sequence[str] = (),
) -> Report:
    """Group, filter, sort and (with ``baseline``) test loaded runs; ``notes`` are the
    warnings of :func:`load_runs`, kept in the report."""
    experiments, more = group_runs(records)
    if not any(e.runs for e in experiments):
        raise RunError("nothing to compare: no run has finished with test metrics")
    experiments = _order(apply_filters(experiments, filters), sort, baseline)
    report = Report(
        experiments,
        list(metrics or parse_metrics(None)),
        differing_keys(experiments),
        baseline,
        alpha,
        warnings=[*notes, *more],
    )
    if baseline is not None:
        _add_comparisons(report, baseline)
    return report


def _order(
    experiments: list[Experiment], sort: str | None, baseline: str | None
) -> list[Experiment]:
    """By name with the baseline first; with ``sort``, best mean first (missing last)."""
    if sort is not None:
        if sort not in METRICS:
            raise UsageError(f"--sort {sort}: unknown metric; choose from {', '.join(METRICS)}")
        sign = -1.0 if METRICS[sort].higher_is_better else 1.0
        return sorted(experiments, key=lambda e: _sort_key(e.summary(sort).mean, sign))
    return sorted(experiments, key=lambda e: (e.name != baseline, e.name))


def _sort_key(mean: float, sign: float) -> tuple[bool, float]:
    return (math.isnan(mean), 0.0 if math.isnan(mean) else sign * mean)


def _add_comparisons(report: Report, baseline: str) -> None:
    by_name = {e.name: e for e in report.experiments}
    if baseline not in by_name:
        raise UsageError(
            f"--baseline {baseline}: no such experiment; choose from {', '.join(by_name)}"
        )
    base = by_name[baseline]
    others = [e for e in report.experiments if e is not base]
    if not others:
        report.nothing_to_compare = (
            f"--baseline {baseline}: nothing to compare, it is the only experiment"
        )
        return
    report.comparisons = [
        compare_metric(base, other, metric, report.alpha)
        for other in others
        for metric in report.metrics
    ]


# --------------------------------------------------------------------------- training configs


def plan_runs(
    config_paths: Sequence[str], seeds: int, overrides: Sequence[str] = ()
) -> list[ExperimentConfig]:
    """One config per (file, seed 0..seeds-1), with ``overrides`` applied to every file."""
    return [
        load_config(path, [*overrides, f"seed={seed}"])
        for path in config_paths
        for seed in range(seeds)
    ]


def train_missing(
    configs: Sequence[ExperimentConfig],
    *,
    jobs: int = 1,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> list[Path]:
    """Train the runs of ``configs`` not finished yet (finished ones are reused); their folders.

    Trains through :func:`mnistexp.workers.execute`, so ``jobs`` workers, skipping and
    resumption behave exactly as in ``mnistexp sweep``.
    """
    from mnistexp.errors import Terminated
    from mnistexp.workers import execute

    summary = execute(
        list(configs), jobs=jobs, runs_dir=runs_dir, data_dir=data_dir, progress=progress
    )
    if summary.interrupted_by_user:  # no table from half the runs: stop as the sweep did
        raise Terminated() if summary.interrupt_code == 143 else KeyboardInterrupt()
    return [runs.run_dir(cfg, runs_dir) for cfg in configs]
