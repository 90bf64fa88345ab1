"""Compare experiments: group loaded runs by config hash, filter, sort, test, into a Report.

Data flow: input paths -> run folders -> :class:`~mnistexp.rundirs.RunRecord` per folder
(:mod:`mnistexp.rundirs`) -> :class:`Experiment` per config hash, seed excluded
(:func:`group_runs`) -> :class:`Report` (:func:`build_report`) -> text (:mod:`mnistexp.report`,
pure: a report in, a string out).

Against a baseline (:func:`compare_metric`): a paired t-test on the seeds both experiments
share when they share at least two; otherwise Welch's t-test when both have at least two seeds;
otherwise, for accuracy only, McNemar's exact test (a binomial test on the discordant test
images) on one pair of runs' predictions. The test used is part of every :class:`Comparison`;
the statistics themselves live in :mod:`mnistexp.stats`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistexp import registries, stats
from mnistexp.columns import BOUNDS, METRICS, Metric, parse_metrics
from mnistexp.config import IDENTITY_EXCLUDED, all_keys, parse_override
from mnistexp.errors import ConfigError, RunError, UsageError
from mnistexp.rundirs import RunRecord, read_hits
from mnistexp.states import State
from mnistexp.stats import Summary, summarize

JSON_SCHEMA_VERSION = 2
HIDDEN_KEYS = IDENTITY_EXCLUDED
"""Config keys never shown as columns: the ones left out of a run's identity."""


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
        """Mean, std and 95% t-interval over seeds; with a single seed, the run's own 95%
        bootstrap interval over test images where metrics.json has one (``interval``)."""
        out = summarize(list(self.values(key).values()))
        if out.n == 1 and self.interval(key) is not None:
            low, high = self.interval(key)  # type: ignore[misc]
            out = Summary(1, out.mean, math.nan, low, high)
        return out

    def interval(self, key: str) -> tuple[float, float] | None:
        """The single run's bootstrap interval of metric ``key`` (None if absent or > 1 run)."""
        if len(self.runs) != 1:
            return None
        low, high = (self.runs[0].values.get(f"{key}{suffix}", math.nan) for suffix in BOUNDS)
        return (low, high) if math.isfinite(low) and math.isfinite(high) else None


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
    for record in (r for r in members if r.state == State.COMPLETED):
        if record.seed in done:
            notes.append(
                f"{record.path}: same experiment and seed as {done[record.seed].path}; left out"
            )
            continue
        done[record.seed] = record
    name = Counter(r.name for r in members).most_common(1)[0][0]
    diverged = [r for r in members if r.state == State.DIVERGED]
    return Experiment(name, chash, members[0].config, list(done.values()), diverged)


def apply_filters(experiments: list[Experiment], filters: Sequence[str]) -> list[Experiment]:
    """Keep the experiments whose resolved config matches every ``key=value`` filter."""
    keys = all_keys()
    for item in filters:
        key, wanted = parse_override(item)
        if key not in keys:
            raise ConfigError(f"--filter {item!r}: unknown key {key}")
        if key in IDENTITY_EXCLUDED:  # differs between the runs of one experiment: per run
            for e in experiments:
                e.runs = [r for r in e.runs if _same(r.config.get(key), wanted)]
                e.diverged = [r for r in e.diverged if _same(r.config.get(key), wanted)]
            experiments = [e for e in experiments if e.runs or e.diverged]
            continue
        experiments = [e for e in experiments if _same(e.config.get(key), wanted)]
    if not experiments:
        raise UsageError(f"no experiment matches --filter {' --filter '.join(filters)}")
    return experiments


def _same(actual: Any, wanted: Any) -> bool:
    return actual == wanted or str(actual) == str(wanted)


def differing_keys(experiments: Sequence[Experiment]) -> list[str]:
    """Config keys (schema order) whose values are not the same in every experiment.

    A component's parameter is absent where the chosen loss or scheme does not read it; that
    absence is no difference from experiments that hold it at a default (cross-entropy's
    ``confidence_penalty: 0.0`` beside squared error, which has none).
    """
    defaults = _declared_defaults()
    out = []
    for key in all_keys():
        if key in HIDDEN_KEYS:
            continue
        seen: set[str | None] = {
            json.dumps(e.config[key], sort_keys=True) if key in e.config else None
            for e in experiments
        }
        if None in seen:
            present = seen - {None} - defaults.get(key, set())
            seen = present | {None} if present else set()
        if len(seen) > 1:
            out.append(key)
    return out


def _declared_defaults() -> dict[str, set[str | None]]:
    """Dotted key -> the JSON of every default that some component declares for it."""
    out: dict[str, set[str | None]] = {}
    for section, (_, registry) in registries.COMPONENTS.items():
        for component in registry.values():
            for p in component.params:
                out.setdefault(f"{section}.{p.name}", set()).add(json.dumps(p.default))
    return out


# --------------------------------------------------------------------------- comparisons


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
    p_adjusted: float | None = None  # after the report's multiple-comparison correction
    correction: str = "none"

    @property
    def significant(self) -> bool | None:
        """The verdict, on the adjusted p-value."""
        p = self.p_value if self.correction == "none" else self.p_adjusted
        return None if p is None else p < self.alpha


def compare_metric(
    base: Experiment, other: Experiment, metric: Metric, alpha: float = 0.05
) -> Comparison:
    """Difference of ``other`` to ``base`` on ``metric`` with the test the seeds allow."""
    b, o = base.values(metric.key), other.values(metric.key)
    shared = sorted(set(b) & set(o))
    if len(shared) >= 2:
        diff, p, test = stats.paired_t([b[s] for s in shared], [o[s] for s in shared])
    elif len(b) >= 2 and len(o) >= 2:
        diff, p, test = stats.welch_t(list(b.values()), list(o.values()))
    elif metric.key == "accuracy" and b and o:
        try:
            diff, p, test = _mcnemar(*_one_pair(base, other, shared))
        except RunError as exc:  # a corrupt predictions.npz costs the test, not the table
            diff, p, test = stats.mean_difference(b, o), None, f"no test ({exc})"
    else:
        diff, p, test = stats.mean_difference(b, o), None, "no test (needs 2 seeds per experiment)"
    return Comparison(other.name, base.name, metric.key, diff, p, test, alpha)


def _one_pair(base: Experiment, other: Experiment, shared: list[int]) -> tuple[Path, Path]:
    """Run folders for McNemar: the shared seed if any, else each experiment's first run."""
    if shared:
        return _run_of(base, shared[0]), _run_of(other, shared[0])
    return base.runs[0].path, other.runs[0].path


def _run_of(exp: Experiment, seed: int) -> Path:
    return next(r.path for r in exp.runs if r.seed == seed)


def _mcnemar(base_run: Path, other_run: Path) -> stats.Result:
    """McNemar's test on two runs' test predictions; no test if their test labels differ."""
    base_hit, labels = read_hits(base_run)
    other_hit, other_labels = read_hits(other_run)
    if not np.array_equal(labels, other_labels):
        return (
            float(other_hit.mean() - base_hit.mean()),
            None,
            "no test (the runs' test labels differ)",
        )
    return stats.mcnemar(base_hit, other_hit)


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
    correction: str = "holm"  # stats.CORRECTIONS, across all comparisons of the report


def build_report(
    records: Sequence[RunRecord],
    metrics: Sequence[Metric] | None = None,
    *,
    sort: str | None = None,
    filters: Sequence[str] = (),
    baseline: str | None = None,
    alpha: float = 0.05,
    notes: Sequence[str] = (),
    correction: str = "holm",
) -> Report:
    """Group, filter, sort and (with ``baseline``) test loaded runs; ``notes`` are the
    warnings of :func:`~mnistexp.rundirs.load_runs`, kept in the report. The p-values of
    one report are one family: ``correction`` (Holm by default) adjusts them together."""
    if correction not in stats.CORRECTIONS:
        raise UsageError(f"--correction {correction}: choose one of {', '.join(stats.CORRECTIONS)}")
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
        correction=correction,
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
    raw = [
        compare_metric(base, other, metric, report.alpha)
        for other in others
        for metric in report.metrics
    ]
    adjusted = stats.adjust([c.p_value for c in raw], report.correction)
    report.comparisons = [
        dataclasses.replace(c, p_adjusted=p, correction=report.correction)
        for c, p in zip(raw, adjusted, strict=True)
    ]
