"""How the iterative calibration fits of a run ended: the ``fit`` record of metrics.json.

:func:`mnistexp.eval.metrics.fit_temperature` and the affine maps of
:mod:`mnistexp.eval.recalibration` return a :class:`FitReport` beside their parameters;
evaluation writes it into the map's section of metrics.json, and compare and the train summary
read it back through :func:`fit_problems`, which turns every fit that stopped short of its
optimum into one phrase. No imports of its own:
compare reads 10,000s of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FitReport:
    """How an iterative calibration fit ended; written into metrics.json as ``fit``.

    ``converged``: the optimiser met its tolerance at an interior point. ``gradient``: the
    largest absolute partial derivative of the fitted objective (mean validation NLL, plus any
    penalty) with respect to the map's own parameters (log T for the temperature; W and b for
    the affine maps) at the returned parameters. ``at_bound``: a parameter sits on the bound of
    its search range, so the optimum may lie beyond it. ``iterations``: the optimiser's count.
    """

    converged: bool
    gradient: float
    at_bound: bool
    iterations: int

    def as_json(self) -> dict[str, Any]:
        return {
            "converged": self.converged,
            "gradient": self.gradient,
            "at_bound": self.at_bound,
            "iterations": self.iterations,
        }


OLD_TEMPERATURE_BOUNDS = (0.05, 20.0)
"""Where earlier releases stopped the temperature search; they recorded no ``fit``."""


def fit_problems(report: Any) -> list[str]:
    """One phrase per recalibration fit of a metrics.json ``report`` that did not reach its
    optimum: its ``fit`` record says it did not converge or sits on a bound, or (an earlier
    release, no record) its temperature sits on that release's search bounds."""
    if not isinstance(report, dict):
        return []
    sections = {"temperature": report.get("test_temperature_scaled")}
    recalibrated = report.get("test_recalibrated")
    if isinstance(recalibrated, dict):
        sections |= {k: v for k, v in recalibrated.items() if k != "temperature"}
    problems = []
    for name, section in sections.items():
        if not isinstance(section, dict):
            continue
        fit, temperature = section.get("fit"), section.get("temperature")
        if isinstance(fit, dict):
            problems += _record_problem(name, temperature, fit)
        elif name == "temperature" and _on_old_bound(temperature):
            problems.append(
                f"temperature {temperature:.4g} is the bound of an earlier release's search "
                f"{list(OLD_TEMPERATURE_BOUNDS)}, not the optimum (--force refits it)"
            )
    return problems


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _on_old_bound(temperature: Any) -> bool:
    """Within 0.01% of a bound: the bounded search stopped a hair inside it."""
    return _number(temperature) and any(
        abs(temperature - bound) <= 1e-4 * bound for bound in OLD_TEMPERATURE_BOUNDS
    )


def _record_problem(name: str, temperature: Any, fit: dict[str, Any]) -> list[str]:
    details = [f"T = {temperature:.3g}"] if _number(temperature) else []
    if _number(fit.get("gradient")):
        details.append(f"gradient {fit['gradient']:.2g}")
    detail = f" ({', '.join(details)})" if details else ""
    if fit.get("at_bound") is True:
        return [
            f"the {name} fit sits on the bound of its search{detail}; the optimum lies beyond "
            "it (validation data separable, or without signal)"
        ]
    if fit.get("converged") is False:
        return [f"the {name} fit stopped short of its optimum{detail}"]
    return []
