"""The metrics compare can show: where each lives in metrics.json and how it is displayed.

A registry (:data:`METRICS`) looked up by the names of ``--metrics`` and ``--sort``; the run reader
(:mod:`mnistexp.analysis.rundirs`), the report (:mod:`mnistexp.analysis.compare`), the renderers
(:mod:`mnistexp.analysis.report`) and the plots all take their columns from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mnistexp.core.errors import UsageError


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
    short: str = ""  # a shorter label for the terminal table (default: label)

    @property
    def header(self) -> str:
        unit = self.unit_text
        return f"{self.label} ({unit})" if unit else self.label

    @property
    def unit_text(self) -> str:
        """``%`` for percent metrics, else the unit (may be empty)."""
        return "%" if self.percent else self.unit

    @property
    def short_label(self) -> str:
        return self.short or self.label

    @property
    def short_header(self) -> str:
        """``TS ECE (%)``: the short label with the unit."""
        unit = self.unit_text
        return f"{self.short_label} ({unit})" if unit else self.short_label

    def shown(self, value: float) -> float:
        """The value in display units (percent for fractions)."""
        return 100.0 * value if self.percent else value

    @property
    def digits(self) -> int:
        return 2 if self.percent else 4

    def value_in(self, report: dict[str, Any]) -> Any:
        """The raw value in a metrics.json ``report`` (None where absent); ``section`` may be
        a dotted path such as ``test_recalibrated.vector``."""
        node: Any = report
        for part in [*self.section.split("."), self.field]:
            node = node.get(part) if isinstance(node, dict) else None
        return node

    def interval_in(self, report: dict[str, Any]) -> Any:
        """The run's bootstrap interval [low, high] (None where metrics.json has none)."""
        if self.section != "test":
            return None
        boot = report.get("test", {}).get("bootstrap") if isinstance(report, dict) else None
        return boot.get(self.field) if isinstance(boot, dict) else None


BOUNDS = (":boot_low", ":boot_high")
"""Suffixes of a metric's bootstrap bounds among a run record's values (``accuracy:boot_low``)."""

RECALIBRATION_TITLES = {
    "vector": "VS",
    "matrix": "MS",
    "matrix_odir": "MS-ODIR",
    "histogram": "HB",
    "histogram_width": "HB-width",
    "isotonic": "IR",
}
"""Recalibration methods beside temperature (whose ts_* columns came first) and their short
names in headers; a test checks these are the registry's methods."""

ABBREVIATIONS = {
    "TS": "temperature scaling",
    "VS": "vector scaling",
    "MS": "matrix scaling",
    "MS-ODIR": "matrix scaling with off-diagonal and intercept regularisation",
    "HB": "histogram binning (equal-mass bins)",
    "HB-width": "histogram binning (equal-width bins)",
    "IR": "isotonic regression",
}
"""What every short name of a recalibration map stands for, as the tables' footnotes say."""

METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("accuracy", "accuracy", "test", "accuracy", percent=True, higher_is_better=True),
        Metric("nll", "NLL", "test", "nll", unit="nats"),
        Metric("brier", "Brier", "test", "brier"),
        Metric("ece", "ECE", "test", "ece", percent=True),
        Metric(
            "ts_ece", "ECE after TS", "test_temperature_scaled", "ece", percent=True, short="TS ECE"
        ),
        Metric(
            "ts_nll",
            "NLL after TS",
            "test_temperature_scaled",
            "nll",
            unit="nats",
            short="TS NLL",
        ),
        Metric("mce", "MCE", "test", "mce", percent=True),
        Metric("ace", "adaptive ECE", "test", "ace", percent=True),
        Metric(
            "confidence",
            "mean confidence",
            "test",
            "mean_confidence",
            percent=True,
            higher_is_better=None,
            short="confidence",
        ),
        Metric(
            "temperature",
            "TS temperature",
            "test_temperature_scaled",
            "temperature",
            higher_is_better=None,
            short="TS T",
        ),
        # Validation metrics choose hyperparameters (e.g. a learning rate) without touching test.
        Metric(
            "val_accuracy",
            "validation accuracy",
            "validation",
            "accuracy",
            percent=True,
            higher_is_better=True,
            short="val. accuracy",
        ),
        Metric("val_nll", "validation NLL", "validation", "nll", unit="nats", short="val. NLL"),
        # estimators beyond the binned ECE (metrics.json schema 2)
        Metric("debiased_ce", "debiased CE", "test", "debiased_ce", percent=True),
        Metric("smooth_ece", "smooth ECE", "test", "smooth_ece", percent=True),
        # each recalibration map of eval.recalibration (schema 2), e.g. vector_ece
        *(
            Metric(
                f"{method}_{key}",
                f"{label} after {title}",
                f"test_recalibrated.{method}",
                key,
                percent=percent,
                higher_is_better=better,
                unit=unit,
            )
            for method, title in RECALIBRATION_TITLES.items()
            for key, label, percent, better, unit in (
                ("accuracy", "accuracy", True, True, ""),
                ("nll", "NLL", False, False, "nats"),
                ("ece", "ECE", True, False, ""),
            )
        ),
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
