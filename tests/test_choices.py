"""Every registry choice trains on the tiny dataset: one axis at a time from the defaults."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mnistexp.config import registries
from mnistexp.config.loading import load_config
from mnistexp.learning.losses import LOSSES
from mnistexp.orchestration.experiment import run_experiment
from tests.conftest import TINY

VARIANTS = [
    *[[f"loss.type={t}", f"loss.output={o}"] for t, c in LOSSES.items() for o in c.outputs],
    *[
        [f"{key}={value}"]
        for key, values in registries.choices().items()
        if key not in ("loss.type", "loss.output", "data.dataset", "train.backprop")
        for value in values
        if not value.startswith("distill")  # needs a teacher run: tests/test_encodings.py
    ],
    *[
        ["train.backprop=" + rule, "loss.type=mse", "loss.output=sigmoid"]
        for rule in registries.choices()["train.backprop"]
    ],
    ["loss.type=focal", "loss.gamma_schedule=flsd53", "loss.confidence_penalty=0.1"],
    [
        "loss.type=mse",
        "loss.output=tanh",
        "targets.scheme=soft",
        "targets.low=-1",
        "targets.high=1",
    ],
    ["targets.scheme=bootstrap_soft", "targets.beta=0.9"],
    ["train.mixup_alpha=0.4"],
    ["train.shuffle=false"],
    ["train.momentum=0.9", "train.nesterov=true"],
    ["train.weight_decay=0.001"],
    ["model.hidden=[12,8]", "model.bias=false"],
    ["train.batch_size=1", "data.train_subset=60"],
    ["data.validation=0"],
]


@pytest.mark.slow  # 70 trainings, one per choice: half a minute
@pytest.mark.parametrize("sets", VARIANTS, ids=["+".join(v) for v in VARIANTS])
def test_choice_trains_and_evaluates(sets: list[str], tiny: Path, tmp_path: Path):
    cfg = load_config(None, [*TINY, *sets, "train.lr=0.05"])
    outcome = run_experiment(cfg, runs_dir=tmp_path, data_dir=tiny)
    assert outcome.state == "completed", outcome.message
    test = outcome.metrics["test"]
    assert 0.0 <= test["accuracy"] <= 1.0 and math.isfinite(test["nll"])
    scaled = outcome.metrics["test_temperature_scaled"]
    assert ("temperature" in scaled) == (cfg.data.validation > 0)
