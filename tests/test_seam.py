"""The seam between outputs, losses and target schemes, and a run identity that survives new
options: a new scheme or loss is one class plus one registry entry, and trains end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnistexp.config.identity import config_hash, identity
from mnistexp.config.loading import load_config
from mnistexp.core.errors import ConfigError
from mnistexp.core.params import Param
from mnistexp.core.schema import ExperimentConfig
from mnistexp.learning import losses, targets
from mnistexp.learning.outputs import OUTPUTS, Output
from mnistexp.orchestration.experiment import run_experiment
from mnistexp.store import runs
from tests.conftest import TINY

# --------------------------------------------------------------------------- identity


@pytest.mark.slow  # every shipped config and sweep, twice: most of a minute
def test_a_key_added_at_its_default_changes_no_identity(monkeypatch):
    """A parameter every target scheme and loss gains: no pinned run id moves."""
    from tests.test_run_ids import GOLDEN, current_ids

    throwaway = (Param("throwaway", 0.5, float, 0.0, 1.0),)
    for registry in (targets.TARGETS, losses.LOSSES):
        for component in registry.values():
            monkeypatch.setattr(component, "params", component.params + throwaway)
    assert load_config(None).targets.throwaway == 0.5
    assert current_ids() == json.loads(GOLDEN.read_text())
    base = config_hash(load_config(None))
    assert config_hash(load_config(None, ["targets.throwaway=0.5"])) == base
    assert config_hash(load_config(None, ["targets.throwaway=0.25"])) != base


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (["targets.scheme=onehot"], ["targets.scheme=onehot", "targets.epsilon=0.3"]),
        (["targets.scheme=smooth"], ["targets.scheme=smooth", "targets.low=0.2"]),
        (["train.schedule=constant"], ["train.step_every=3", "train.gamma=0.5"]),
        (["train.optimizer=adam"], ["train.optimizer=adam", "train.momentum=0.9"]),
        (["train.momentum=0.0"], ["train.momentum=-0.0"]),
        (["train.weight_decay=0"], ["train.weight_decay=0.0"]),
        ([], ["loss.delta=exact", "train.backprop=exact", "train.checkpoint_every=3"]),
    ],
)
def test_settings_that_change_no_number_share_one_identity(a, b):
    assert config_hash(load_config(None, a)) == config_hash(load_config(None, b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (["targets.scheme=smooth"], ["targets.scheme=smooth", "targets.epsilon=0.3"]),
        (["train.schedule=step"], ["train.schedule=step", "train.gamma=0.5"]),
        (["train.momentum=0.5"], ["train.momentum=0.9"]),
    ],
)
def test_settings_that_change_numbers_split_the_identity(a, b):
    assert config_hash(load_config(None, a)) != config_hash(load_config(None, b))


SCHEMA_1 = {
    "data": ["dataset", "scaling", "validation", "train_subset"],
    "model": ["hidden", "activation", "init", "bias"],
    "loss": ["type", "output"],
    "targets": ["scheme", "low", "high", "epsilon"],
    "train": [
        *("epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay"),
        *("schedule", "step_every", "gamma", "dtype"),
    ],
    "eval": ["bins", "temperature_scaling"],
}
"""The keys mnistexp 0.1 hashed (every key but seed, name, data.dir, checkpoint_every),
written out here as the historical fact it is, not read from the code under test."""


def test_identity_of_the_defaults_is_the_schema_1_hash():
    # the hash mnistexp 0.1 wrote for the defaults, computed by its rule: canonical JSON
    full = ExperimentConfig().to_dict()
    d = {section: {k: full[section][k] for k in keys} for section, keys in SCHEMA_1.items()}
    import hashlib

    old = hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode())
    assert config_hash(ExperimentConfig()) == old.hexdigest()


# --------------------------------------------------------------------------- declared params


def test_declared_ranges_give_one_line_errors():
    with pytest.raises(ConfigError, match=r"targets.epsilon = 1.5 is invalid: must be in \[0, 1\)"):
        load_config(None, ["targets.scheme=smooth", "targets.epsilon=1.5"])
    with pytest.raises(ConfigError, match=r"unknown key loss\.gama"):
        load_config(None, ["loss.gama=2"])


class ScaledCrossEntropy(losses.CrossEntropy):
    """Toy loss with a parameter: ``weight`` times softmax cross-entropy."""

    params = (Param("weight", 1.0, float, 0.0, None, low_open=True),)

    def value(self, z, a, t):
        return self.cfg.weight * super().value(z, a, t)

    def delta(self, z, a, t, out):
        return np.multiply(super().delta(z, a, t, out), self.cfg.weight, out=out)


class SelfMix(targets.TargetScheme):
    """Toy scheme that reads the model's outputs: half one-hot, half the current prediction."""

    per_batch = True
    calls: list[int] = []  # noqa: RUF012
    prepared: list[int] = []  # noqa: RUF012

    def prepare(self, context: targets.PrepareContext) -> None:
        SelfMix.prepared.append(context.train.x.shape[0])

    def batch(self, t: np.ndarray, labels: np.ndarray, z: np.ndarray, output: Output):
        SelfMix.calls.append(z.shape[0])
        q = np.exp(output.log_probs(z.astype(np.float64))).astype(t.dtype)
        return 0.5 * t + 0.5 * q


@pytest.fixture
def toys(monkeypatch):
    monkeypatch.setitem(losses.LOSSES, "scaled_ce", ScaledCrossEntropy)
    monkeypatch.setitem(targets.TARGETS, "selfmix", SelfMix)
    SelfMix.calls, SelfMix.prepared = [], []


def test_toy_loss_and_scheme_train_end_to_end(toys, tiny, tmp_path):
    sets = [*TINY, f"data.dir={tiny}", "loss.type=scaled_ce", "targets.scheme=selfmix"]
    with pytest.raises(ConfigError, match=r"loss.weight = 0.0 is invalid: must be > 0"):
        load_config(None, [*sets, "loss.weight=0"])
    cfg = load_config(None, [*sets, "loss.weight=2.5"])
    assert cfg.loss.weight == 2.5
    outcome = run_experiment(cfg, runs_dir=tmp_path)
    assert outcome.state == "completed", outcome.message
    assert outcome.metrics["test"]["accuracy"] > 0.5
    assert SelfMix.prepared == [500]  # prepared once, on the 500 training images
    # the hook saw the training batches, the monitor, validation and evaluation
    assert len(SelfMix.calls) > 2 * (500 // 20)
    assert "weight: 2.5" in (outcome.run_dir / "config.yaml").read_text()
    again = load_config(None, [*sets, "loss.weight=1.0"])
    assert runs.run_name(again) != runs.run_name(cfg)
    assert "weight" not in identity(load_config(None, [*sets]))["loss"]  # default: not hashed


def test_the_hook_changes_the_gradient(toys):
    cfg = load_config(None, ["targets.scheme=selfmix"])
    scheme = targets.make_scheme(cfg.targets, 3)
    t = scheme.encode(np.array([0, 2]))
    z = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]], np.float32)
    mixed = scheme.batch(t, np.array([0, 2]), z, OUTPUTS["softmax"])
    np.testing.assert_allclose(mixed[0], [2 / 3, 1 / 6, 1 / 6], rtol=1e-6)
    top = np.exp(5) / (np.exp(5) + 2)  # softmax([5, 0, 0])[0]
    np.testing.assert_allclose(mixed[1], [top / 2, (1 - top) / 4, 0.5 + (1 - top) / 4], rtol=1e-6)
