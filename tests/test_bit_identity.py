"""Refactors change no number: fingerprints of representative real-MNIST runs are pinned.

Each case trains a shipped config (or a variant covering another output, optimiser or batch
size) on a small real-MNIST budget and fingerprints what a user keeps: the bytes of
metrics.json and every array of predictions.npz and model.npz (name, dtype, shape, bytes; the
zip container itself carries timestamps). The fingerprints in tests/golden/bit_identity.json
were recorded before the seam refactor; ``MNISTEXP_REGEN_GOLDEN=1`` rewrites them, which a
change that is *meant* to move numbers must say in its commit message.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from mnistexp.config import load_config
from mnistexp.experiment import run_experiment

pytestmark = [pytest.mark.mnist, pytest.mark.slow]
CONFIGS = Path(__file__).parent.parent / "configs"
GOLDEN = Path(__file__).parent / "golden" / "bit_identity.json"
BUDGET = ["data.train_subset=3000", "data.validation=2000", "train.epochs=2"]
CASES = {
    "baseline": ("baseline.yaml", []),
    "label_smoothing": ("label_smoothing.yaml", []),
    "mse_sigmoid": ("mse_sigmoid.yaml", []),
    "soft_targets": ("soft_targets.yaml", []),
    "tutorial": ("tutorial.yaml", ["data.validation=0", "train.epochs=1"]),
    "tutorial_onehot": ("tutorial_onehot.yaml", ["data.validation=0", "train.epochs=1"]),
    "bce_sigmoid": ("baseline.yaml", ["loss.type=bce", "loss.output=sigmoid"]),
    "mse_linear": ("baseline.yaml", ["loss.type=mse", "loss.output=linear", "train.lr=0.01"]),
    "mse_softmax": ("baseline.yaml", ["loss.type=mse", "loss.output=softmax"]),
    "adam_tanh": (
        "baseline.yaml",
        ["train.optimizer=adam", "train.lr=0.001", "model.activation=tanh", "model.hidden=[64,32]"],
    ),
    "nesterov_cosine_f64": (
        "baseline.yaml",
        [
            "train.momentum=0.9",
            "train.nesterov=true",
            "train.weight_decay=0.0001",
            "train.schedule=cosine",
            "train.dtype=float64",
            "data.scaling=standardize",
        ],
    ),
    "batch1_sigmoid": (
        "baseline.yaml",
        [
            "train.batch_size=1",
            "model.activation=sigmoid",
            "train.lr=0.05",
            "train.epochs=1",
            "data.train_subset=1000",
        ],
    ),
}


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of metrics.json and of each array in predictions.npz and model.npz."""
    out = {"metrics.json": hashlib.sha256((folder / "metrics.json").read_bytes()).hexdigest()}
    for name in ("predictions.npz", "model.npz"):
        with np.load(folder / name) as npz:
            for key in sorted(npz.files):
                a = np.ascontiguousarray(npz[key])
                h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
                h.update(a.tobytes())
                out[f"{name}:{key}"] = h.hexdigest()
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_results_are_bit_identical_to_the_recorded_ones(case, mnist_dir, tmp_path):
    config, extra = CASES[case]
    cfg = load_config(CONFIGS / config, [*BUDGET, *extra])
    outcome = run_experiment(cfg, runs_dir=tmp_path, data_dir=mnist_dir)
    assert outcome.state == "completed", outcome.message
    got = fingerprint(outcome.run_dir)
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("MNISTEXP_REGEN_GOLDEN"):
        recorded[case] = got
        GOLDEN.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        return
    assert case in recorded, f"no fingerprint recorded for {case}"
    assert got == recorded[case]
