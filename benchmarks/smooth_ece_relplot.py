"""mnistexp's smooth ECE against the ``relplot`` package (Blasiok and Nakkiran's reference code).

relplot is not a dependency of mnistexp (it pulls in pandas, scikit-learn and seaborn, and its
licence is Apple's own), so this script runs in an environment that has both, e.g.

    python3 -m venv /tmp/relplot-venv && /tmp/relplot-venv/bin/pip install relplot==1.0.3
    PYTHONPATH=. /tmp/relplot-venv/bin/python benchmarks/smooth_ece_relplot.py [RUN_DIR ...]

It compares smECE at fixed bandwidths and the smooth ECE with its fixed-point bandwidth on
synthetic cases (calibrated, over- and underconfident, MNIST-like confidences near 1) and on the
test predictions of any run folders given, prints one line per case, and exits 1 when a value
differs by more than ``TOLERANCE`` (absolute) or relplot is missing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from mnistexp.eval import calibration

TOLERANCE = 1e-3


def synthetic() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = {}
    n = 10000
    conf = rng.uniform(0.1, 1.0, n)
    out["calibrated"] = (conf, rng.uniform(size=n) < conf)
    out["overconfident"] = (conf, rng.uniform(size=n) < conf**2)
    out["underconfident"] = (conf, rng.uniform(size=n) < np.sqrt(conf))
    near_one = 1.0 - rng.beta(0.3, 12.0, n)  # most mass within 1e-3 of 1, like MNIST MLPs
    out["near_one_calibrated"] = (near_one, rng.uniform(size=n) < near_one)
    out["near_one_off_by_1pt"] = (near_one, rng.uniform(size=n) < near_one - 0.01)
    return out


def from_run(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(folder / "predictions.npz", allow_pickle=False) as arrays:
        probs, labels, pred = arrays["probs"], arrays["labels"], arrays["predictions"]
    conf = probs.astype(np.float64)[np.arange(len(pred)), pred]
    return conf, pred == labels


def main(argv: list[str]) -> int:
    try:
        import relplot
    except ImportError:
        print("relplot is not installed here: see this script's docstring", file=sys.stderr)
        return 1
    cases = synthetic() | {Path(a).name: from_run(Path(a)) for a in argv}
    worst = 0.0
    print(f"{'case':<28} {'sigma':>7} {'mnistexp':>10} {'relplot':>10} {'|diff|':>9}")
    for name, (conf, correct) in cases.items():
        y = correct.astype(np.float64)
        for sigma in (0.01, 0.05, 0.2):
            ours = calibration.smooth_ece_at(conf, correct, sigma)
            theirs = float(relplot.smECE_sigma(conf, y, sigma))
            worst = max(worst, abs(ours - theirs))
            diff = abs(ours - theirs)
            print(f"{name:<28} {sigma:>7.3f} {ours:>10.6f} {theirs:>10.6f} {diff:>9.2e}")
        start = time.perf_counter()
        ours, our_sigma = calibration.smooth_ece(conf, correct)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs, their_sigma = relplot.smECE(conf, y, return_width=True)
        theirs_s = time.perf_counter() - start
        worst = max(worst, abs(ours - theirs))
        print(
            f"{name:<28} {'fixed':>7} {ours:>10.6f} {float(theirs):>10.6f} "
            f"{abs(ours - theirs):>9.2e}  sigma* {our_sigma:.5f} vs {float(their_sigma):.5f}; "
            f"{ours_s * 1000:.0f} ms vs {theirs_s * 1000:.0f} ms"
        )
    print(f"largest difference {worst:.2e} (tolerance {TOLERANCE:g})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
