"""Statistics over seeds: summaries, t-tests, McNemar's exact test. Pure: numbers in, numbers out.

Per experiment and metric: mean, sample standard deviation (ddof 1) and the 95% Student-t
interval mean +- t(0.975, n-1) * std / sqrt(n) (:func:`summarize`). Between two experiments
(chosen by :func:`mnistexp.analysis.compare.compare_metric`): a paired t-test on shared seeds
(:func:`paired_t`), Welch's t-test (:func:`welch_t`), or McNemar's exact test on one pair of
runs' per-image hits (:func:`mcnemar`). Each test returns ``(difference, p-value or None, the
test's description)``, difference = other minus baseline. scipy is imported inside the tests.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Result = tuple[float, float | None, str]
"""(other minus baseline, p-value or None when undefined, which test and on what)."""


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
    std = float(x.std(ddof=1))
    half = _t_quantile(0.5 + confidence / 2, x.size - 1) * std / math.sqrt(x.size)
    return Summary(int(x.size), mean, std, mean - half, mean + half)


@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> float:
    """Student's t quantile, remembered: a comparison summarises thousands of cells over a
    few seed counts, and each scipy call costs about 0.3 ms."""
    from scipy import stats

    return float(stats.t.ppf(q, df))


def mean_difference(base: dict[int, float], other: dict[int, float]) -> float:
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


def paired_t(base: list[float], other: list[float]) -> Result:
    """Paired t-test on values of the same seeds, in the same order."""
    from scipy import stats

    diff = float(np.mean(np.subtract(other, base)))
    p = _pvalue(stats.ttest_rel, other, base)
    return diff, _settle(diff, p), f"paired t-test, {len(base)} shared seeds"


def difference_interval(
    base: list[float], other: list[float], paired: bool, confidence: float = 0.95
) -> tuple[float, float] | None:
    """The ``confidence`` Student-t interval of other minus base: over the per-seed
    differences when ``paired`` (same seeds, same order), else Welch's, with the
    Welch-Satterthwaite degrees of freedom. None when it is undefined (fewer than two values
    a side, or no spread at all)."""
    from scipy import stats

    b, o = np.asarray(base, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if paired:
        d = o - b
        if d.size < 2:
            return None
        center, se, df = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(d.size), d.size - 1.0
    else:
        if b.size < 2 or o.size < 2:
            return None
        vb, vo = b.var(ddof=1) / b.size, o.var(ddof=1) / o.size
        center, se = float(o.mean() - b.mean()), math.sqrt(vb + vo)
        df = (vb + vo) ** 2 / (vb**2 / (b.size - 1) + vo**2 / (o.size - 1)) if se else math.nan
    if not (se > 0 and math.isfinite(se)):
        return None
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return center - half, center + half


def welch_t(base: list[float], other: list[float]) -> Result:
    """Welch's t-test (unequal variances) on two independent samples of seeds."""
    from scipy import stats

    diff = float(np.mean(other) - np.mean(base))
    p = _pvalue(stats.ttest_ind, other, base, equal_var=False)
    return diff, _settle(diff, p), f"Welch t-test, {len(base)} vs {len(other)} seeds"


def mcnemar(base_hit: np.ndarray, other_hit: np.ndarray) -> Result:
    """Accuracy difference and McNemar's exact p-value from two runs' hits on the same images.

    ``base_hit``, ``other_hit``: (n,) bool, True where the run's prediction is right.
    b = images only the baseline gets right, c = only the other; under H0 c ~ Binomial(b + c,
    1/2), so the two-sided p-value is scipy's exact binomial test.
    """
    from scipy import stats

    b = int(np.sum(base_hit & ~other_hit))
    c = int(np.sum(~base_hit & other_hit))
    p = 1.0 if b + c == 0 else float(stats.binomtest(c, b + c, 0.5).pvalue)
    diff = (c - b) / base_hit.size
    test = f"McNemar exact test, 1 seed each ({b} vs {c} discordant)"
    if p < P_BOUND:  # the exact tail underflows: report the bound, never 0.0
        return diff, P_BOUND, f"{test}; p < {P_BOUND:g}, a bound"
    return diff, p, test


# --------------------------------------------------------------------------- many tests

P_BOUND = 1e-300
"""p-values below this (an exact binomial tail can underflow to 0.0) are reported as this
bound, with the test's description saying so."""


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values (m,), in the input order.

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value of p_(i)
    is max over j <= i of min(1, (m - j + 1) p_(j)); rejecting where it is below alpha controls
    the family-wise error rate at alpha.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.maximum.accumulate(stepped)
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values (m,), in the input order.

    Sorted ascending, the adjusted value of p_(i) is min over j >= i of min(1, m p_(j) / j);
    rejecting where it is below alpha controls the false discovery rate at alpha (for
    independent or positively dependent tests).
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, m * p[order] / np.arange(1, m + 1))
    out = np.empty(m)
    out[order] = np.minimum.accumulate(stepped[::-1])[::-1]
    return out


CORRECTIONS: dict[str, Callable[[Sequence[float]], np.ndarray]] = {
    "holm": holm,
    "bh": benjamini_hochberg,
    "none": lambda p: np.asarray(p, dtype=np.float64),
}
"""``compare --correction`` -> adjusted p-values of one table's tests."""

CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}


def adjust(p_values: Sequence[float | None], method: str) -> list[float | None]:
    """``method``'s adjusted p-values; tests without a p-value (None) are not counted in m."""
    present = [i for i, p in enumerate(p_values) if p is not None]
    kept = [float(p) for p in p_values if p is not None]
    adjusted = CORRECTIONS[method](kept).tolist() if kept else []
    out: list[float | None] = [None] * len(p_values)
    for i, value in zip(present, adjusted, strict=True):
        out[i] = float(value)
    return out
