"""``compare --shift``: every experiment's numbers beyond the test set over seeds, and its seed
ensemble (:mod:`mnistexp.analysis.ensembles`), as one :class:`ShiftReport` for the renderers.

Pooling. An experiment's runs (one config hash) are pooled only over equal shift settings:
the settings most of its runs hold (ties: those of the lowest seed); a run evaluated under
others is one warning and leaves the shift tables. Each run's shift_predictions.npz is read
once, after its SHA-256 is checked against shift.json, together with its predictions.npz; a
run whose arrays are missing, replaced or malformed is one warning line and loses only its
shift columns. A set whose checksum (the SHA-256 of its images and labels) differs between the
pooled runs is one warning and is dropped for that experiment: those runs were not scored on
the same images.

Rows. Per experiment and set (``test``, the unshifted test set, then the sets of shift.json in
its order): mean ± sd over the pooled seeds of the numbers shift.json holds, for the raw
probabilities and after every recalibration map the runs fitted (the test set's come from
metrics.json and, for the selective scores, from predictions.npz); then, with two or more
pooled runs, the ensemble of their probabilities, recomputed from the stored arrays (raw
probabilities only, not recalibrated). OOD sets likewise, per OOD score.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mnistexp.analysis import ensembles, shiftcache
from mnistexp.analysis.columns import METRICS, RECALIBRATION_TITLES, Metric
from mnistexp.analysis.compare import Experiment
from mnistexp.analysis.rundirs import RunRecord
from mnistexp.analysis.shiftruns import read_arrays, read_test
from mnistexp.analysis.stats import Summary, summarize
from mnistexp.core.errors import RunError, UsageError
from mnistexp.eval.metrics import DEFAULT_BINS
from mnistexp.eval.selective import selective_report
from mnistexp.pipeline.overlap import mapped
from mnistexp.pipeline.shifted import DIGITS

TEST = "test"
"""The key of the unshifted test set among a :class:`ShiftReport`'s sets."""
ENSEMBLE = "ensemble"
"""The variant of an ensemble row (its probabilities are raw, not recalibrated)."""

SET_METRICS: dict[str, Metric] = {
    **{k: METRICS[k] for k in ("accuracy", "nll", "brier", "ece", "debiased_ce", "smooth_ece")},
    **{
        m.key: m
        for m in (
            Metric("aurc", "AURC", "selective", "aurc", percent=True),
            Metric("eaurc", "E-AURC", "selective", "eaurc", percent=True),
            *(
                Metric(
                    f"acc_at_{c}",
                    f"accuracy at {c}% coverage",
                    "selective",
                    f"acc_at_{c}",
                    percent=True,
                    higher_is_better=True,
                    short=f"acc@{c}",
                )
                for c in (90, 95, 99)
            ),
        )
    },
}
"""Every number of a labelled set that compare --shift reports, in display order."""
SHIFT_METRICS = ("accuracy", "nll", "brier", "ece", "debiased_ce", "smooth_ece")
"""``--shift-metric`` choices: the calibration and accuracy columns of the shift table."""
DEFAULT_SHIFT_METRICS = ("ece", "accuracy")
SELECTIVE_METRICS = ("aurc", "eaurc", "acc_at_90", "acc_at_95", "acc_at_99")
OOD_METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("auroc", "AUROC", "ood", "auroc", percent=True, higher_is_better=True),
        Metric("aupr_in", "AUPR-in", "ood", "aupr_in", percent=True, higher_is_better=True),
        Metric("aupr_out", "AUPR-out", "ood", "aupr_out", percent=True, higher_is_better=True),
        Metric("fpr95", "FPR at 95% TPR", "ood", "fpr95", percent=True, short="FPR95"),
    )
}
VARIANT_TITLES = {"raw": "raw", "temperature": "TS", **RECALIBRATION_TITLES, ENSEMBLE: "raw"}
"""How a variant is named in the tables' ``map`` column."""


@dataclass(frozen=True)
class SetRow:
    """One experiment's numbers on one labelled set, for one variant: the raw probabilities,
    a recalibration map (``temperature``, ``vector``, ...) or :data:`ENSEMBLE`."""

    experiment: str
    variant: str
    n: int  # seeds summarised; for the ensemble, its members
    key: str  # test, rotate/15, digits
    family: str  # test, rotate, translate, noise, contrast, digits
    severity: float | None
    values: dict[str, Summary]  # metric -> mean ± sd over seeds (ensemble: one value)

    @property
    def label(self) -> str:
        """``base``, or for the ensemble ``base (ensemble of 3)``."""
        return (
            ensemble_label(self.experiment, self.n) if self.variant == ENSEMBLE else self.experiment
        )


@dataclass(frozen=True)
class OodRow:
    """One experiment's detection numbers on one OOD set, for one variant and score."""

    experiment: str
    variant: str
    n: int
    name: str  # letters, uniform, gaussian
    score: str  # msp, entropy, energy
    values: dict[str, Summary]

    @property
    def label(self) -> str:
        return (
            ensemble_label(self.experiment, self.n) if self.variant == ENSEMBLE else self.experiment
        )


@dataclass(frozen=True)
class RiskCurve:
    """Risk on :data:`~mnistexp.analysis.ensembles.COVERAGE_GRID` of each pooled seed (on the
    unshifted test set) and of their ensemble (None with fewer than two)."""

    experiment: str
    seeds: list[np.ndarray]
    ensemble: np.ndarray | None


@dataclass(frozen=True)
class PooledExperiment:
    """Which runs of an experiment its shift rows summarise."""

    name: str
    chash: str
    seeds: list[int]
    runs: list[str]
    settings: dict[str, Any]
    bins: int


PART_TYPES: dict[str, type] = {
    "experiments": PooledExperiment,
    "sets": SetRow,
    "ood": OodRow,
    "curves": RiskCurve,
}
"""The report's list fields an experiment adds to, and what they hold."""


@dataclass
class ShiftReport:
    """Everything the shift tables and figures show; no further file access."""

    experiments: list[PooledExperiment] = field(default_factory=list)
    sets: list[SetRow] = field(default_factory=list)
    ood: list[OodRow] = field(default_factory=list)
    curves: list[RiskCurve] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metrics: tuple[str, ...] = DEFAULT_SHIFT_METRICS  # the shift table's, --shift-metric


def parse_shift_metrics(text: str | None) -> tuple[str, ...]:
    """``"ece,accuracy"`` -> its names, checked against :data:`SHIFT_METRICS`; None -> the
    defaults."""
    if text is None:
        return DEFAULT_SHIFT_METRICS
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in SHIFT_METRICS]
    if unknown or not names:
        raise UsageError(
            f"--shift-metric {text!r}: unknown metric {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(SHIFT_METRICS)}"
        )
    return tuple(dict.fromkeys(names))


def ensemble_label(experiment: str, members: int) -> str:
    return f"{experiment} (ensemble of {members})"


def build_shift(
    experiments: Sequence[Experiment], metrics: Sequence[str] = DEFAULT_SHIFT_METRICS
) -> ShiftReport:
    """The :class:`ShiftReport` of ``experiments`` (loaded with ``load_runs(..., shift=True)``),
    reading each pooled run's arrays once."""
    report = ShiftReport(metrics=tuple(metrics))
    for exp in experiments:
        _add_experiment(report, exp)
    return report


# --------------------------------------------------------------------------- pooling


@dataclass
class _Member:
    """A pooled run whose arrays passed every check (the arrays themselves go to :class:`_Sums`)."""

    record: RunRecord
    labels: dict[str, np.ndarray]  # test and every labelled set key -> (n_set,)
    selective: dict[str, float]  # of the unshifted test set
    risk: np.ndarray  # (grid,) of the unshifted test set


class _Sums:
    """The pooled runs' restored probabilities summed per set (``test``, set keys,
    ``ood/<name>``), one run at a time: an experiment costs one run's arrays and the sums,
    whatever its number of seeds."""

    def __init__(self) -> None:
        self.total: dict[str, np.ndarray] = {}
        self.count = 0
        self.broken: set[str] = set()  # keys some run lacks or holds in another shape

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        if self.count:
            self.broken |= set(self.total) ^ set(arrays)
        for key, p in arrays.items():
            if not self.count:
                self.total[key] = p.copy()
            elif key in self.total and self.total[key].shape == p.shape:
                self.total[key] += p
            else:
                self.broken.add(key)
        self.count += 1

    def mean(self, key: str) -> np.ndarray:
        """The ensemble of ``key`` (n, K): the runs' probabilities averaged."""
        return self.total[key] / self.count


def _pooled(exp: Experiment, notes: list[str]) -> list[RunRecord]:
    """The runs of ``exp`` with shift.json under the settings most of them hold."""
    with_shift = [r for r in exp.runs if r.shift is not None]
    if not with_shift:
        return []
    counts = Counter(r.shift.settings_key for r in with_shift if r.shift)
    best = max(counts.values())
    chosen = next(
        r.shift.settings_key for r in with_shift if r.shift and counts[r.shift.settings_key] == best
    )
    for r in with_shift:
        if r.shift and r.shift.settings_key != chosen:
            notes.append(
                f"{r.path}: shift settings differ from the other runs of '{exp.name}'; "
                "its shift columns are left out"
            )
    return [r for r in with_shift if r.shift and r.shift.settings_key == chosen]


def _load(record: RunRecord) -> tuple[_Member, dict[str, np.ndarray]]:
    """One pooled run read and checked: its member record and its restored probabilities
    by set (RunError or ValueError if unusable)."""
    shift = record.shift
    assert shift is not None  # pooled runs have shift.json
    arrays = read_arrays(record.path, shift)
    test = read_test(record.path, record.values["accuracy"])
    probs = {TEST: ensembles.restore(test.probs)}
    classes = probs[TEST].shape[1]
    labels = {TEST: test.labels}
    restored: dict[str, np.ndarray] = {}  # npz key -> restored (equal sets share one)
    for key, s in shift.sets.items():
        if s.probs not in restored:
            restored[s.probs] = ensembles.restore(_array(arrays, s.probs, (s.n, classes)))
        probs[key] = restored[s.probs]
        given = _array(arrays, f"{key}/labels") if s.family == DIGITS else test.labels
        labels[key] = ensembles.check_labels(given, s.n)
    for name, o in shift.ood.items():
        stored = _array(arrays, f"ood/{name}/probs", (o.n, classes))
        probs[f"ood/{name}"] = ensembles.restore(stored)
    conf = ensembles.of_class(probs[TEST], test.predictions)
    correct = test.predictions == test.labels
    member = _Member(
        record, labels, selective_report(conf, correct), ensembles.risk_on_grid(conf, correct)
    )
    return member, probs


def _array(
    arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """``arrays[key]``, checked to have ``shape``; ValueError naming the key otherwise."""
    if key not in arrays:
        raise ValueError(f"no array {key}")
    if shape is not None and arrays[key].shape != shape:
        raise ValueError(f"{key} has shape {arrays[key].shape}, not {shape}")
    return arrays[key]


def _members(runs: list[RunRecord], sums: _Sums, notes: list[str]) -> list[_Member]:
    """The pooled runs whose arrays are usable, each added to ``sums`` in run order (so the
    sums are the same whatever the threads) as it is read; a few runs are read ahead."""
    out = []
    for record, loaded in zip(runs, mapped(_attempt, runs), strict=True):
        if isinstance(loaded, RunError):
            notes.append(f"{loaded}; its shift columns are left out")
        elif isinstance(loaded, ValueError):
            where = record.path / "shift_predictions.npz"
            notes.append(f"{where}: {loaded}; its shift columns are left out")
        else:
            member, probs = loaded
            sums.add(probs)
            out.append(member)
    return out


def _attempt(record: RunRecord) -> tuple[_Member, dict[str, np.ndarray]] | RunError | ValueError:
    """:func:`_load`, or the RunError or ValueError that says why the run is unusable."""
    try:
        return _load(record)
    except (RunError, ValueError) as exc:
        return exc


def _consistent(
    exp: Experiment, members: list[_Member], notes: list[str]
) -> tuple[list[str], list[str]]:
    """(labelled set keys, OOD names) that every member holds with one checksum."""

    def kept(found: list[dict[str, Any]], what: str) -> list[str]:
        out = []
        for key in found[0]:
            checksums = {f[key].checksum if key in f else None for f in found}
            if len(checksums) == 1:
                out.append(key)
            else:
                notes.append(
                    f"experiment '{exp.name}': {what} {key} differs between its runs "
                    "(another checksum, or missing); left out of its shift tables"
                )
        return out

    shifts = [m.record.shift for m in members if m.record.shift]
    return kept([s.sets for s in shifts], "set"), kept([s.ood for s in shifts], "OOD set")


# --------------------------------------------------------------------------- rows


def _add_experiment(report: ShiftReport, exp: Experiment) -> None:
    """``exp``'s rows, curves and warnings added to ``report``: computed from its pooled
    runs' arrays, or read back from :mod:`~mnistexp.analysis.shiftcache` when none of the
    files they come from has changed since."""
    pooled = _pooled(exp, report.notes)
    if not pooled:
        return
    smooth = "smooth_ece" in report.metrics  # on the shifted sets: only when shown
    key = shiftcache.fingerprint(pooled, exp.name, exp.chash, smooth)
    part = shiftcache.remembered(key, lambda: _computed(exp, pooled, smooth), PART_TYPES)
    report.notes += part["notes"]
    report.experiments += part["experiments"]
    report.sets += part["sets"]
    report.ood += part["ood"]
    report.curves += part["curves"]


def _computed(exp: Experiment, pooled: list[RunRecord], smooth: bool) -> shiftcache.Part:
    """``exp``'s contribution to the report from the arrays of its ``pooled`` runs."""
    notes: list[str] = []
    part: shiftcache.Part = {"notes": notes, **{field: [] for field in PART_TYPES}}
    sums = _Sums()
    members = _members(pooled, sums, notes)
    if not members:
        return part
    set_keys, ood_names = _consistent(exp, members, notes)
    first = members[0].record
    assert first.shift is not None
    bins = _bins(first)
    seeds, paths = [m.record.seed for m in members], [str(m.record.path) for m in members]
    part["experiments"] = [
        PooledExperiment(exp.name, exp.chash, seeds, paths, first.shift.settings, bins)
    ]
    part["sets"] = _seed_rows(exp.name, members, set_keys)
    part["ood"] = _seed_ood_rows(exp.name, members, ood_names)
    risk = None
    needed = {TEST, *set_keys, *(f"ood/{name}" for name in ood_names)}
    if _can_average(exp, members, set_keys, sums.broken & needed, notes):
        part["sets"] += _ensemble_rows(exp.name, members, set_keys, sums, bins, smooth)
        part["ood"] += _ensemble_ood_rows(exp.name, len(members), ood_names, sums)
        test, labels = sums.mean(TEST), members[0].labels[TEST]
        pred = test.argmax(axis=1)
        risk = ensembles.risk_on_grid(ensembles.of_class(test, pred), pred == labels)
    part["curves"] = [RiskCurve(exp.name, [m.risk for m in members], risk)]
    return part


def _bins(record: RunRecord) -> int:
    """The run's eval.bins (its config), else shift.json's, else the default."""
    bins = record.config.get("eval.bins")
    if isinstance(bins, int) and not isinstance(bins, bool) and bins >= 1:
        return bins
    return (record.shift.bins if record.shift else None) or DEFAULT_BINS


def _summaries(values: Sequence[dict[str, float]], keys: Sequence[str]) -> dict[str, Summary]:
    return {k: summarize([v[k] for v in values if k in v]) for k in keys}


def _seed_rows(name: str, members: list[_Member], keys: list[str]) -> list[SetRow]:
    n = len(members)
    test_values = [
        {k: m.record.values.get(k, math.nan) for k in SHIFT_METRICS} | m.selective for m in members
    ]
    rows = [SetRow(name, "raw", n, TEST, TEST, None, _summaries(test_values, list(SET_METRICS)))]
    for key in keys:
        sets = [m.record.shift.sets[key] for m in members if m.record.shift]
        variants = dict.fromkeys(v for s in sets for v in s.variants)
        for variant in variants:
            found = [s.variants[variant] for s in sets if variant in s.variants]
            values = _summaries(found, list(SET_METRICS))
            s = sets[0]
            rows.append(SetRow(name, variant, len(found), key, s.family, s.severity, values))
    return rows


def _seed_ood_rows(name: str, members: list[_Member], names: list[str]) -> list[OodRow]:
    rows = []
    for ood in names:
        found = [m.record.shift.ood[ood] for m in members if m.record.shift]
        variants = dict.fromkeys(v for f in found for v in f.variants)
        for variant in variants:
            scores = dict.fromkeys(s for f in found for s in f.variants.get(variant, {}))
            for score in scores:
                per_seed = [
                    f.variants[variant][score]
                    for f in found
                    if score in f.variants.get(variant, {})
                ]
                values = _summaries(per_seed, list(OOD_METRICS))
                rows.append(OodRow(name, variant, len(per_seed), ood, score, values))
    return rows


def _can_average(
    exp: Experiment, members: list[_Member], keys: list[str], broken: set[str], notes: list[str]
) -> bool:
    """Whether ``members`` make an ensemble: two or more, with the same labels on the test
    set and every set of ``keys``, and no ``broken`` sum (a note if not)."""
    if len(members) < 2:
        return False
    first = members[0]
    for m in members[1:]:
        if not all(np.array_equal(m.labels[k], first.labels[k]) for k in [TEST, *keys]):
            notes.append(
                f"experiment '{exp.name}': {m.record.path} has other labels than "
                f"{first.record.path}; no seed ensemble"
            )
            return False
    if broken:
        notes.append(
            f"experiment '{exp.name}': {', '.join(sorted(broken))} differ in shape "
            "between its runs; no seed ensemble"
        )
        return False
    return True


def _one(values: dict[str, float], keys: Sequence[str]) -> dict[str, Summary]:
    nan = math.nan
    return {
        k: Summary(1, values[k], nan, nan, nan) if k in values else Summary(0, nan, nan, nan, nan)
        for k in keys
    }


def _ensemble_rows(
    name: str, members: list[_Member], keys: list[str], sums: _Sums, bins: int, smooth: bool
) -> list[SetRow]:
    """The ensemble's rows: the test set, then every set of ``keys`` (the smooth ECE of these
    only if ``smooth``: it costs about 25 ms a set whatever its size)."""
    n, first = len(members), members[0]
    shift = first.record.shift
    assert shift is not None
    shown = [*SET_METRICS, ensembles.STORED_ZERO]
    test = ensembles.scores(sums.mean(TEST), first.labels[TEST], bins)
    rows = [SetRow(name, ENSEMBLE, n, TEST, TEST, None, _one(test, shown))]
    first_key: dict[str, str] = {}  # checksum -> the first set with it: equal sets scored once
    for key in keys:
        first_key.setdefault(shift.sets[key].checksum, key)

    def scored(key: str) -> dict[str, float]:
        return ensembles.scores(sums.mean(key), first.labels[key], bins, smooth)

    by_checksum = dict(zip(first_key, mapped(scored, first_key.values()), strict=True))
    for key in keys:
        s = shift.sets[key]
        values = _one(by_checksum[s.checksum], shown)
        rows.append(SetRow(name, ENSEMBLE, n, key, s.family, s.severity, values))
    return rows


def _ensemble_ood_rows(name: str, n: int, names: list[str], sums: _Sums) -> list[OodRow]:
    test = sums.mean(TEST)
    return [
        OodRow(name, ENSEMBLE, n, ood, score, _one(values, list(OOD_METRICS)))
        for ood in names
        for score, values in ensembles.ood_scores(test, sums.mean(f"ood/{ood}")).items()
    ]
