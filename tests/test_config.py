"""Config loading, overrides and validation: one exact error line per bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mnistexp.config.identity import config_hash
from mnistexp.config.loading import (
    ExperimentConfig,
    all_keys,
    from_dict,
    load_config,
    parse_override,
    to_yaml,
)
from mnistexp.core.errors import ConfigError

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def test_defaults_are_valid_and_complete():
    cfg = from_dict({})
    # the chosen loss's declared parameters are resolved to their defaults beside the fields
    assert cfg.loss.params == (("confidence_penalty", 0.0),)
    assert dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, params=())) == (
        ExperimentConfig()
    )
    assert "train.lr" in all_keys() and "targets.epsilon" in all_keys()


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_load_and_say_what_they_answer(path: Path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert path.read_text().startswith("# Question:")


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        pytest.param({"train": {"lr": "1e-3"}}, 1e-3, id="yaml-1.1-exponent-string"),
        pytest.param({"train": {"lr": 1}}, 1.0, id="int-for-float"),
    ],
)
def test_numbers_are_accepted_in_friendly_forms(raw, value):
    assert from_dict(raw).train.lr == value


OK = [
    pytest.param(["model.hidden=[256,128]"], "model", "hidden", (256, 128), id="list"),
    pytest.param(["targets.epsilon=0.05"], "targets", "epsilon", 0.05, id="float"),
    pytest.param(
        ["train.nesterov=true", "train.momentum=0.9"], "train", "nesterov", True, id="bool"
    ),
    pytest.param(["data.train_subset=null"], "data", "train_subset", None, id="null"),
    pytest.param(["loss.type=mse", "loss.output=linear"], "loss", "output", "linear", id="pair"),
]


@pytest.mark.parametrize(("sets", "section", "key", "expected"), OK)
def test_overrides(sets, section, key, expected):
    cfg = load_config(None, sets)
    assert getattr(getattr(cfg, section), key) == expected


BAD = [
    pytest.param(["train.lrr=0.1"], "unknown key train.lrr; did you mean train.lr?", id="typo"),
    pytest.param(["bogus=1"], "unknown key bogus", id="unknown-top"),
    pytest.param(["train.lr=-0.1"], "train.lr = -0.1 is invalid: must be > 0", id="lr<=0"),
    pytest.param(
        ["train.lr=fast"], "train.lr = 'fast' is invalid: expected a number", id="lr-type"
    ),
    pytest.param(["train.epochs=0"], "train.epochs = 0 is invalid: must be >= 1", id="epochs"),
    pytest.param(
        ["train.epochs=2.5"], "train.epochs = 2.5 is invalid: expected an integer", id="epochs-type"
    ),
    pytest.param(
        ["train.batch_size=0"], "train.batch_size = 0 is invalid: must be >= 1", id="batch"
    ),
    pytest.param(
        ["train.nesterov=yes please"],
        "train.nesterov = 'yes please' is invalid: expected true or false",
        id="bool",
    ),
    pytest.param(
        ["targets.epsilon=1.0"], "targets.epsilon = 1.0 is invalid: must be in [0, 1)", id="epsilon"
    ),
    pytest.param(
        ["targets.low=0.9", "targets.high=0.1"],
        "targets.low = 0.9 is invalid: must be < targets.high = 0.1",
        id="low>=high",
    ),
    pytest.param(
        ["targets.high=1.5"],
        "targets.high = 1.5 is invalid: must lie in the range of loss.output = softmax, [0, 1]",
        id="high>1",
    ),
    pytest.param(
        ["model.hidden=[]"],
        "model.hidden = [] is invalid: must list at least one layer size",
        id="hidden-empty",
    ),
    pytest.param(
        ["model.hidden=[100,0]"],
        "model.hidden[1] = 0 is invalid: layer sizes must be >= 1",
        id="hidden-0",
    ),
    pytest.param(
        ["model.hidden=100"],
        "model.hidden = 100 is invalid: expected a list, e.g. [256, 128]",
        id="hidden-scalar",
    ),
    pytest.param(["eval.bins=0"], "eval.bins = 0 is invalid: must be >= 1", id="bins"),
    pytest.param(
        ["loss.type=hinge"],
        "loss.type = 'hinge' is invalid: choose one of cross_entropy, mse, bce, focal",
        id="choice",
    ),
    pytest.param(
        ["model.activation=gelu"],
        "model.activation = 'gelu' is invalid: choose one of sigmoid, tanh, relu",
        id="activation",
    ),
    pytest.param(
        ["loss.type=cross_entropy", "loss.output=sigmoid"],
        "loss.output = 'sigmoid' does not fit loss.type = 'cross_entropy': "
        "use loss.output = softmax",
        id="ce-needs-softmax",
    ),
    pytest.param(
        ["loss.type=bce", "loss.output=softmax"],
        "loss.output = 'softmax' does not fit loss.type = 'bce': use loss.output = sigmoid",
        id="bce-needs-sigmoid",
    ),
    pytest.param(["train=3"], "train must be a section (mapping), got int 3", id="section"),
    pytest.param(
        ["seed"], "--set 'seed': expected key.path=value, e.g. train.lr=0.05", id="no-equals"
    ),
    pytest.param(
        ["train.lr=[1"], "--set 'train.lr=[1': the value is not valid YAML", id="bad-yaml-value"
    ),
    pytest.param(["seed=-1"], "seed = -1 is invalid: must be >= 0", id="seed"),
    pytest.param(
        ["train.momentum=0", "train.nesterov=true"],
        "train.nesterov = True is invalid: needs train.momentum > 0",
        id="nesterov",
    ),
]


@pytest.mark.parametrize(("sets", "message"), BAD)
def test_bad_overrides_give_one_exact_line(sets, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, sets)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("train: [1, 2\n", "malformed YAML at line 2, column 1", id="malformed"),
        pytest.param("- 1\n- 2\n", "a config must be a mapping of keys, got a list", id="list"),
        pytest.param(
            "model:\n  hiden: [10]\n",
            "unknown key model.hiden; did you mean model.hidden?",
            id="typo",
        ),
        pytest.param("!!python/object:os.system {}\n", "malformed YAML", id="unsafe-tag"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="^" + str(path).replace(".", r"\.")) as err:
        load_config(path)
    assert message in str(err.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_data_dependent_sizes_are_checked():
    from mnistexp.config.loading import check_against_data

    cfg = load_config(None, ["data.validation=10000", "data.train_subset=60000"])
    with pytest.raises(ConfigError, match=r"data\.train_subset = 60000 is invalid: only 50000"):
        check_against_data(cfg, 60000)
    cfg = load_config(None, ["data.train_subset=100", "train.batch_size=101"])
    with pytest.raises(ConfigError, match=r"batch_size = 101 is invalid: larger than the 100"):
        check_against_data(cfg, 60000)
    assert check_against_data(load_config(None, ["data.validation=0"]), 60000) == 60000


def test_hash_ignores_seed_name_and_data_dir_but_nothing_else():
    base = config_hash(load_config(None))
    assert config_hash(load_config(None, ["seed=3", "name=x", "data.dir=/tmp"])) == base
    assert config_hash(load_config(None, ["train.lr=0.05"])) != base
    assert len(base) == 64


def test_resolved_yaml_round_trips(tmp_path: Path):
    cfg = load_config(None, ["model.hidden=[32,16]", "targets.scheme=smooth"])
    path = tmp_path / "resolved.yaml"
    path.write_text(to_yaml(cfg))
    again = load_config(path)
    assert config_hash(again) == config_hash(cfg)


def test_parse_override_values_are_yaml():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=") == ("a", None)
    assert parse_override("x=0.1") == ("x", 0.1)
