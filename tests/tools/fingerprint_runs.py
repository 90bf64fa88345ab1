"""Train the bit-identity cases with whichever mnistexp is first on sys.path; print fingerprints.

Usage: ``python fingerprint_runs.py SOURCE_ROOT CONFIGS RUNS_DIR DATA_DIR CASES_JSON``. The
test runs it twice, once with the reference commit's sources and once with the working tree's,
each in a fresh process, so both sides see the same machine, BLAS and thread settings.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every entry of metrics.json and of each array in predictions.npz and model.npz.

    metrics.json is fingerprinted entry by entry (``metrics.json:test/nll``, ...) so that a
    later version may add entries (schema 2 adds estimators) while every entry the reference
    wrote must still be there with the same value; JSON floats round-trip exactly. Arrays are
    hashed by dtype, shape and bytes: the zip container itself carries timestamps.
    """
    import numpy as np

    out = {
        f"metrics.json:{key}": hashlib.sha256(json.dumps(value).encode()).hexdigest()
        for key, value in _leaves(json.loads((folder / "metrics.json").read_text()))
    }
    for name in ("predictions.npz", "model.npz"):
        with np.load(folder / name) as npz:
            for key in sorted(npz.files):
                a = np.ascontiguousarray(npz[key])
                h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
                h.update(a.tobytes())
                out[f"{name}:{key}"] = h.hexdigest()
    return out


def _leaves(tree: object, prefix: str = "") -> list[tuple[str, object]]:
    """(slash/joined/key, value) for every non-dict value of a JSON tree."""
    if not isinstance(tree, dict):
        return [(prefix, tree)]
    return [leaf for k, v in tree.items() for leaf in _leaves(v, f"{prefix}/{k}" if prefix else k)]


def main() -> None:
    source, configs, runs_dir, data_dir, cases = sys.argv[1:6]
    sys.path.insert(0, source)
    from mnistexp.config import load_config  # the same path in the flat and layered layouts

    try:
        from mnistexp.orchestration.experiment import run_experiment
    except ImportError:  # the flat layout of the reference commit
        from mnistexp.experiment import run_experiment

    result = {}
    for case, (config, overrides) in json.loads(cases).items():
        cfg = load_config(Path(configs) / config, overrides)
        outcome = run_experiment(cfg, runs_dir=Path(runs_dir) / case, data_dir=data_dir)
        if str(outcome.state) != "completed":
            raise SystemExit(f"{case}: {outcome.state}: {outcome.message}")
        result[case] = fingerprint(outcome.run_dir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
