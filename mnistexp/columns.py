"""The metrics compare can show: where each lives in metrics.json and how it is displayed.

A registry (:data:`METRICS`) looked up by the names of ``--metrics`` and ``--sort``; the run
reader (:mod:`mnistexp.rundirs`), the report (:mod:`mnistexp.compare`), the renderers
(:mod:`mnistexp.report`) and the plots all take their columns from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistexp.errors import UsageError


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
