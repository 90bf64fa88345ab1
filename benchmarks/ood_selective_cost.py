"""What the OOD and selective-prediction reports cost at MNIST's test size (issue 27).

Times ``ood_report`` on 10,000 in-distribution against 10,000 OOD scores and
``selective_report`` on 10,000 confidences (best of ``--repeats`` runs of ``--number`` calls,
one BLAS thread), on continuous scores and on scores with many ties (MSP rounded as float32,
where a confident network gives thousands of exactly 1.0), and the three OOD scores on
(10,000, 10) logits. No data or run folder needed.

    .venv/bin/python benchmarks/ood_selective_cost.py
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import log_softmax
from threadpoolctl import threadpool_limits

from mnistexp.eval.ood import OOD_SCORES, ood_report
from mnistexp.eval.selective import selective_report


def best_ms(fn: Callable[[], Any], number: int, repeats: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeats)) / number * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--number", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, k = args.n, 10
    margin = rng.uniform(4.0, 24.0, (n, 1))  # above ~17 the float32 MSP is exactly 1.0
    z_in = rng.normal(0.0, 1.0, (n, k)) + margin * np.eye(k)[rng.integers(0, k, n)]
    z_out = rng.normal(0.0, 3.0, (n, k))
    lp_in, lp_out = log_softmax(z_in, axis=1), log_softmax(z_out, axis=1)
    msp_in, msp_out = np.exp(lp_in.max(axis=1)), np.exp(lp_out.max(axis=1))
    correct = rng.random(n) < msp_in
    cases = {
        "continuous": (msp_in, msp_out),
        "float32 ties": (msp_in.astype(np.float32), msp_out.astype(np.float32)),
    }
    with threadpool_limits(1):
        for name, score in OOD_SCORES.items():
            ms = best_ms(lambda s=score: s.score(z_in, lp_in), args.number, args.repeats)
            print(f"score {name:8s} ({n}, {k}): {ms:6.2f} ms")
        for label, (s_in, s_out) in cases.items():
            distinct = len(np.unique(np.r_[s_in, s_out]))
            ood = best_ms(lambda a=s_in, b=s_out: ood_report(a, b), args.number, args.repeats)
            sel = best_ms(lambda a=s_in: selective_report(a, correct), args.number, args.repeats)
            print(
                f"{label:12s} ({distinct} distinct of {2 * n}): ood_report {n} + {n}: "
                f"{ood:5.2f} ms; selective_report {n}: {sel:5.2f} ms"
            )


if __name__ == "__main__":
    main()
