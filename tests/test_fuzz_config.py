"""Property: whatever YAML document or ``--set`` strings it is given, the config loader
returns a valid :class:`ExperimentConfig` or raises a :class:`ConfigError` whose message is
one non-empty line. Nothing else: no traceback, no other exception.

CI runs a few hundred derandomized examples per test (profile ``ci``, the default). A long
fuzz run: ``MNISTEXP_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_config.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistexp.config.identity import config_hash
from mnistexp.config.loading import ExperimentConfig, all_keys, load_config, to_yaml
from mnistexp.core.errors import ConfigError

_EXAMPLES = int(os.environ.get("MNISTEXP_FUZZ_EXAMPLES", "0"))
settings.register_profile(
    "ci",
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=_EXAMPLES or 5000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("long" if _EXAMPLES else "ci")

KEYS = all_keys()
SECTIONS = sorted({k.split(".")[0] for k in KEYS if "." in k})
LEAVES = sorted({k.rsplit(".", 1)[-1] for k in KEYS})

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-3, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1),
    st.text(max_size=12),
    st.sampled_from(
        [
            "sgd",
            "adam",
            "mse",
            "bce",
            "softmax",
            "sigmoid",
            "linear",
            "relu",
            "onehot",
            "soft",
            "smooth",
            "unit",
            "tutorial",
            "float64",
            "1e-3",
            "tiny",
            "mnist",
            "cosine",
            "step",
            "../../x",
            "a/b",
            "",
            "nan",
            "inf",
        ]
    ),
)
key_names = st.one_of(
    st.sampled_from([*SECTIONS, *LEAVES, *KEYS]),
    st.text(max_size=8),
    st.integers(),
    st.booleans(),
    st.none(),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(key_names, children, max_size=5),
    ),
    max_leaves=25,
)
# Mostly-valid documents: a known section with known leaves, values of any kind.
sections = st.dictionaries(
    st.sampled_from(SECTIONS),
    st.dictionaries(st.sampled_from(LEAVES), documents, max_size=4),
    max_size=4,
)
raw_text = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            [
                "train:",
                "  lr: 0.1",
                "- 1",
                "&a [1, 2]",
                "*a",
                "<<: *a",
                "{",
                "}",
                "[",
                "]",
                ":",
                "? x",
                "!!str",
                "!!binary x",
                "!!int x",
                "model:",
                "  hidden: [10]",
                "  hidden: &h [*h]",
                "\t",
                "'",
                '"',
                "%YAML 1.1",
                "---",
                "...",
                "seed: 1",
                "seed: 1",
                "#",
                "|",
                ">",
            ]
        ),
        max_size=12,
    ).map("\n".join),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
)
override_keys = st.one_of(
    st.sampled_from([*KEYS, *SECTIONS]),
    st.text(max_size=10),
    st.sampled_from(
        ["", ".", "train.", ".lr", "train..lr", "a.b.c", "train.lr.x", "model.hidden.0"]
    ),
)
override_values = st.one_of(
    st.text(max_size=20),
    scalars.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip().split("\n")[0]),
    st.sampled_from(
        [
            "[1, 2]",
            "[",
            "{a: 1}",
            "&a [*a]",
            "!!python/object:os.system {}",
            "99999999999999999999999999",
            ".inf",
            "-.inf",
            ".nan",
            "2001-13-45",
            "[256,128]",
            "null",
            "~",
            "true",
            "0x10",
            "1_000",
            "1e3",
            "1.0e3",
        ]
    ),
)
overrides = st.lists(
    st.one_of(st.tuples(override_keys, override_values).map("=".join), st.text(max_size=20)),
    max_size=4,
)


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file, rewritten by every example (a module fixture: hypothesis reruns the test)."""
    return tmp_path_factory.mktemp("fuzz") / "fuzz.yaml"


def _check(path: Path, text: str, sets: list[str]) -> None:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        cfg = load_config(path, sets)
    except ConfigError as exc:
        _assert_one_line(str(exc))
        return
    assert isinstance(cfg, ExperimentConfig)
    config_hash(cfg)  # a valid config can be hashed and written out
    assert to_yaml(cfg)


def _assert_one_line(message: str) -> None:
    assert message and message.strip() == message, repr(message)
    assert message.isprintable(), repr(message)  # no line breaks, no control characters


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, default_flow_style=False, allow_unicode=True)


@given(documents, overrides)
def test_random_documents(path: Path, doc: Any, sets: list[str]) -> None:
    _check(path, _dump(doc), sets)


@given(sections, overrides)
def test_random_schema_like_documents(path: Path, doc: dict[str, Any], sets: list[str]) -> None:
    _check(path, _dump(doc), sets)


@given(raw_text, overrides)
def test_random_text(path: Path, text: str, sets: list[str]) -> None:
    _check(path, text, sets)


@given(overrides)
def test_random_overrides_without_a_file(sets: list[str]) -> None:
    try:
        cfg = load_config(None, sets)
    except ConfigError as exc:
        _assert_one_line(str(exc))
    else:
        assert isinstance(cfg, ExperimentConfig)
