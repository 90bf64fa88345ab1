"""Compare experiments: group loaded runs by config hash, filter, sort, test, into a Report.

Data flow: input paths -> run folders -> :class:`~mnistexp.analysis.rundirs.RunRecord` per folder
(:mod:`mnistexp.analysis.rundirs`) -> :class:`Experiment` per config hash, seed excluded
(:func:`group_runs`) -> :class:`Report` (:func:`build_report`) -> text
(:mod:`mnistexp.analysis.report`, pure: a report in, a string out).

Against a baseline (:func:`compare_metric`): a paired t-test on the seeds both experiments
share when they share at least two; otherwise Welch's t-test when both have at least two seeds;
otherwise, for accuracy only, McNemar's exact test (a binomial test on the discordant test
images) on one pair of runs' predictions. The test used is part of every :class:`Comparison`;
the statistics themselves live in :mod:`mnistexp.analysis.stats`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistexp.analysis import stats
from mnistexp.analysis.columns import BOUNDS, METRICS, Metric, parse_metrics
from mnistexp.analysis.provenance import Provenance
from mnistexp.analysis.rundirs import RunRecord, read_hits
from mnistexp.analysis.stats import Summary, summarize
from mnistexp.config import registries
from mnistexp.config.identity import IDENTITY_EXCLUDED
from mnistexp.config.loading import all_keys, parse_override, unknown_key
from mnistexp.core.errors import ConfigError, RunError, UsageError
from mnistexp.core.states import State
from mnistexp.core.yamlio import one_line

JSON_SCHEMA_VERSION = 2
HIDDEN_KEYS = IDENTITY_EXCLUDED
"""Config keys never shown as columns: the ones left out of a run's identity."""


# --------------------------------------------------------------------------- experiments


@dataclass
class Experiment:
    """All runs of one config (seed excluded): completed runs by seed, and diverged ones."""

    name: str  # the label shown: the run name, with the differing keys where names clash
    chash: str
    config: dict[str, Any]
    runs: list[RunRecord]  # completed, one per seed, sorted by seed
    diverged: list[RunRecord]
    run_name: str = ""  # the config's name (``name`` before labelling)
    order: tuple[tuple[int, Any], ...] = ()  # the labelled keys' values, for sorting rows
    legacy: str = ""  # the label before issue 28, over every run found: name[key=value,...]

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
    legacy = legacy_labels(experiments)
    label_experiments(experiments)
    for old, exp in legacy.items():
        exp.legacy = old
    return sorted(experiments, key=_row_key), notes


def label_experiments(experiments: Sequence[Experiment], keys: Sequence[str] | None = None) -> None:
    """Short labels for the rows shown: the run name where names differ, then ``key=value``
    of the config keys that tell the experiments sharing that name apart, their section
    dropped where the rest is unambiguous: ``lr=0.05, scheme=soft`` (one name throughout),
    ``label_smoothing, epsilon=0.05`` (beside a ``baseline``).

    By default the keys are the smallest set of differing keys that tells every clashing
    experiment apart (schema order breaks ties); ``keys`` (``--label``) names them for every
    row instead. A label still not unique gets the config hash, ``name@8972318c``. The labels
    before issue 28 (``name[a=1,b=x]``) stay in ``legacy``, which ``--baseline`` accepts."""
    for exp in experiments:
        exp.run_name = exp.run_name or exp.name
    names = {e.run_name for e in experiments}
    groups: dict[str, list[Experiment]] = {}
    for exp in experiments:
        groups.setdefault(exp.run_name if keys is None else "", []).append(exp)
    for members in groups.values():
        chosen = list(keys) if keys is not None else minimal_keys(members)
        for exp in members:
            values = [exp.config.get(k) for k in chosen]
            exp.order = tuple(_order_value(v) for v in values)
            pairs = [
                f"{k}={value_text(v)}" for k, v in zip(short_keys(chosen), values, strict=True)
            ]
            parts = [exp.run_name] if len(names) > 1 or not pairs else []
            exp.name = ", ".join([*parts, *pairs])
    counts = Counter(e.name for e in experiments)
    for exp in experiments:
        if counts[exp.name] > 1:
            exp.name = f"{exp.name}@{exp.chash[:8]}"


def minimal_keys(experiments: Sequence[Experiment]) -> list[str]:
    """The fewest differing config keys whose values tell ``experiments`` apart (all the
    differing keys when no smaller set does, or when there are too many to search)."""
    keys = differing_keys(experiments) if len(experiments) > 1 else []
    if len(keys) > 12:  # 4,096 subsets: beyond that, every differing key
        return keys
    for size in range(1, len(keys)):
        for subset in itertools.combinations(keys, size):
            seen = {tuple(config_text(e.config, k) for k in subset) for e in experiments}
            if len(seen) == len(experiments):
                return list(subset)
    return keys


def short_keys(keys: Sequence[str]) -> list[str]:
    """Config keys without their section where no other key of the schema ends the same:
    ``train.lr`` -> ``lr``, but ``train.gamma`` stays (``loss.gamma`` exists)."""
    tails = Counter(k.rsplit(".", 1)[-1] for k in all_keys())
    return [k.rsplit(".", 1)[-1] if tails[k.rsplit(".", 1)[-1]] == 1 else k for k in keys]


def parse_label_keys(text: str | None) -> list[str] | None:
    """``--label lr,targets.scheme`` -> the dotted keys (a key may be given by its last part
    where that is unambiguous); None -> the default labels."""
    if text is None:
        return None
    keys = all_keys()
    by_tail: dict[str, list[str]] = {}
    for k in keys:
        by_tail.setdefault(k.rsplit(".", 1)[-1], []).append(k)
    out = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        if item in keys:
            out.append(item)
        elif len(by_tail.get(item, [])) == 1:
            out.append(by_tail[item][0])
        elif item in by_tail:
            raise UsageError(f"--label {item}: ambiguous, give one of {', '.join(by_tail[item])}")
        else:
            raise UsageError(f"--label {item}: {unknown_key(item)}")
    return out


def legacy_labels(experiments: Sequence[Experiment]) -> dict[str, Experiment]:
    """The labels before issue 28, over the experiments given: the run name, and where names
    clash ``name[key=value,...]`` of every key that differs among them."""
    clashes: dict[str, list[Experiment]] = {}
    for exp in experiments:
        clashes.setdefault(exp.run_name or exp.name, []).append(exp)
    out: dict[str, Experiment] = {}
    for name, members in clashes.items():
        keys = differing_keys(members) if len(members) > 1 else []
        for exp in members:
            pairs = ",".join(f"{k}={value_text(exp.config.get(k))}" for k in keys)
            out[f"{name}[{pairs}]" if keys else name] = exp
    return out


def value_text(value: Any) -> str:
    """A config value as the table and the labels show it: ``[256,128]``, ``null``, ``0.05``;
    control characters escaped (:func:`~mnistexp.core.yamlio.one_line`), since a run folder's
    config may hold any text and every output format shows this."""
    if isinstance(value, list):
        return one_line("[" + ",".join(str(v) for v in value) + "]")
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return one_line(str(value))


def config_text(config: dict[str, Any], key: str) -> str:
    """How a config value is shown: :func:`value_text`, except a distillation teacher, shown
    by its run folder's name rather than its 64-character identity."""
    if key in ("targets.teacher_id", "targets.teacher") and config.get("targets.teacher"):
        return one_line(Path(str(config["targets.teacher"])).name)
    return value_text(config.get(key))


def _order_value(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, before text; lists of numbers element by element
    (``[8]``, ``[16]``, ``[16,16]``), other lists by their JSON; missing first."""
    if value is None:
        return (0, 0.0)
    if isinstance(value, int | float):
        return (1, float(value))
    if isinstance(value, list) and all(isinstance(v, int | float) for v in value):
        return (3, tuple(float(v) for v in value))
    return (2, value if isinstance(value, str) else json.dumps(value, sort_keys=True))


def _row_key(exp: Experiment) -> tuple[str, tuple[tuple[int, Any], ...], str]:
    """Rows by run name, then by the labelled keys' values (epsilon 0.0, 0.05, 0.1, 0.2)."""
    return (exp.run_name or exp.name, exp.order, exp.name)


def resolve_baseline(experiments: Sequence[Experiment], text: str) -> str:
    """The label ``--baseline`` names: an exact label (or ``name@hash8``, or a label of
    before issue 28, ``name[key=value,...]``), else the one label it is a prefix of (the old
    labels' prefixes too).

    UsageError (one line) when nothing matches, or when the prefix matches several labels
    (the candidates are named)."""
    labels = [e.name for e in experiments]
    if text in labels:
        return text
    older = {f"{e.run_name or e.name}@{e.chash[:8]}": e.name for e in experiments}
    older.update({e.legacy: e.name for e in experiments if e.legacy})
    if text in older:
        return older[text]
    matches = [label for label in labels if label.startswith(text)]
    if not matches:
        matches = list(dict.fromkeys(new for old, new in older.items() if old.startswith(text)))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(
            f"--baseline {text}: ambiguous, it starts {len(matches)} experiments: "
            f"{'; '.join(matches)}; give one of them (a longer prefix is enough)"
        )
    raise UsageError(f"--baseline {text}: no such experiment; choose from {'; '.join(labels)}")


def _experiment(chash: str, members: list[RunRecord], notes: list[str]) -> Experiment:
    done: dict[int, RunRecord] = {}
    for record in (r for r in members if r.state == State.COMPLETED):
        if record.seed in done:
            notes.append(
                f"{record.path}: same experiment and seed as {done[record.seed].path}; left out"
            )
            continue
        done[record.seed] = record
    # the one place a run's name enters the report: escaped, so that a name from a damaged or
    # hostile config.json cannot set the window title, clear the screen or split a row of
    # any output (table, markdown, CSV, LaTeX, HTML, JSON, figures)
    name = one_line(Counter(r.name for r in members).most_common(1)[0][0])
    diverged = [r for r in members if r.state == State.DIVERGED]
    return Experiment(name, chash, members[0].config, list(done.values()), diverged, name)


def apply_filters(experiments: list[Experiment], filters: Sequence[str]) -> list[Experiment]:
    """Keep the experiments whose resolved config matches every ``key=value`` filter."""
    keys = all_keys()
    for item in filters:
        key, wanted = parse_override(item)
        if key not in keys:
            raise ConfigError(f"--filter {item!r}: {unknown_key(key)}")
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

POWER_SEEDS = 5
"""Below this many seeds per side a comparison is flagged as having little power."""


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
    interval: tuple[float, float] | None = None  # 95% t-interval of the difference
    seeds: int = 0  # seeds per side the test used (shared seeds when paired)

    @property
    def low_power(self) -> bool:
        """Fewer than :data:`POWER_SEEDS` seeds: a t-test this small misses most real
        differences, so "not significant" says little; the interval says what the data allow."""
        return self.seeds < POWER_SEEDS

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
    interval = None
    seeds = len(shared) if len(shared) >= 2 else min(len(b), len(o))
    if len(shared) >= 2:
        pair = [b[s] for s in shared], [o[s] for s in shared]
        diff, p, test = stats.paired_t(*pair)
        interval = stats.difference_interval(*pair, paired=True)
    elif len(b) >= 2 and len(o) >= 2:
        diff, p, test = stats.welch_t(list(b.values()), list(o.values()))
        interval = stats.difference_interval(list(b.values()), list(o.values()), paired=False)
    elif metric.key == "accuracy" and b and o:
        try:
            diff, p, test = _mcnemar(*_one_pair(base, other, shared))
        except RunError as exc:  # a corrupt predictions.npz costs the test, not the table
            diff, p, test = stats.mean_difference(b, o), None, f"no test ({exc})"
    else:
        diff, p, test = stats.mean_difference(b, o), None, "no test (needs 2 seeds per experiment)"
    return Comparison(
        other.name, base.name, metric.key, diff, p, test, alpha, interval=interval, seeds=seeds
    )


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
    interval: bool = False  # table and markdown show the 95% interval (csv and json always)
    latex_width: str = "column"  # latex.LATEX_WIDTHS: a table for one column, or table*
    latex_label: str | None = None  # the LaTeX label (default: from the content)
    provenance: Provenance | None = None  # what made it: set by the CLI, shown by LaTeX, HTML


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
    interval: bool = False,
    latex_width: str = "column",
    latex_label: str | None = None,
    label_keys: Sequence[str] | None = None,
) -> Report:
    """Group, filter, sort and (with ``baseline``) test loaded runs; ``notes`` are the
    warnings of :func:`~mnistexp.analysis.rundirs.load_runs`, kept in the report. The p-values of
    one report are one family: ``correction`` (Holm by default) adjusts them together."""
    if correction not in stats.CORRECTIONS:
        raise UsageError(f"--correction {correction}: choose one of {', '.join(stats.CORRECTIONS)}")
    experiments, more = group_runs(records)
    if not any(e.runs for e in experiments):
        raise RunError("nothing to compare: no run has finished with test metrics")
    experiments = apply_filters(experiments, filters)
    label_experiments(experiments, label_keys)  # over the rows shown, after --filter
    if baseline is not None:
        baseline = resolve_baseline(experiments, baseline)
    experiments = _order(experiments, sort, baseline)
    report = Report(
        experiments,
        list(metrics or parse_metrics(None)),
        differing_keys(experiments),
        baseline,
        alpha,
        warnings=[*notes, *more],
        correction=correction,
        interval=interval,
        latex_width=latex_width,
        latex_label=latex_label,
    )
    if baseline is not None:
        _add_comparisons(report, baseline)
    return report


def _order(
    experiments: list[Experiment], sort: str | None, baseline: str | None
) -> list[Experiment]:
    """By name (clashing names by their differing values) with the baseline first; with
    ``sort``, best mean first (missing last)."""
    if sort is not None:
        if sort not in METRICS:
            raise UsageError(f"--sort {sort}: unknown metric; choose from {', '.join(METRICS)}")
        sign = -1.0 if METRICS[sort].higher_is_better else 1.0
        return sorted(experiments, key=lambda e: _sort_key(e.summary(sort).mean, sign))
    return sorted(experiments, key=lambda e: (e.name != baseline, _row_key(e)))


def _sort_key(mean: float, sign: float) -> tuple[bool, float]:
    return (math.isnan(mean), 0.0 if math.isnan(mean) else sign * mean)


def _add_comparisons(report: Report, baseline: str) -> None:
    base = next(e for e in report.experiments if e.name == baseline)  # resolved already
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
