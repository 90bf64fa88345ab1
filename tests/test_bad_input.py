"""Bad input through the real CLI: one line, exit code 2, nothing half-written.

Every case runs a ``mnistexp`` command in-process (click's CliRunner) and checks that it exits
with code 2, that stderr holds exactly one non-empty line, ``Error: ...``, naming the problem
(the key path, the line number, the did-you-mean, the file), that no traceback was printed,
and that nothing was written under the runs folder. Tables grow: add a row per new mistake.

Kinds: config files, ``--set`` overrides, run names and runs folders, data files, compare
inputs (corrupt runs among good ones are warnings, one line each) and sweep files.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import functools
import gzip
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from mnistexp.cli import main
from mnistexp.data import datasets as data
from tests.conftest import TINY

# --------------------------------------------------------------------------- helpers


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """Exit code 2 and a single ``Error:`` line on stderr containing every fragment."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, lines
    assert lines == errors, lines
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def assert_nothing_written(runs: Path) -> None:
    """The runs folder is absent or holds no file at all (no run folder, no temp file)."""
    if runs.is_dir():
        assert [p for p in runs.rglob("*")] == []
    else:
        assert not runs.exists() or runs.is_file()


def sets(*items: str) -> list[str]:
    return [word for item in items for word in ("--set", item)]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def train(tiny: Path, runs: Path):
    """``mnistexp train`` on the tiny dataset with ``args`` added."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return run_cli(
            "train",
            "--runs-dir",
            runs,
            "--data-dir",
            tiny,
            "--no-progress",
            *sets(*TINY),
            *args,
            env=env,
        )

    return invoke


# --------------------------------------------------------------------------- config files

BOMB = "".join(
    [f"l0: &l0 [{', '.join(['x'] * 10)}]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 8)]
)

CONFIG_FILES = [
    # (id, content, fragments of the one error line)
    ("empty-file", "", ["empty config file", "leave out --config"]),
    ("only-comments", "# nothing here\n\n", ["empty config file"]),
    ("scalar", "42\n", ["must be a mapping of keys, got int 42"]),
    ("string", "hello\n", ["must be a mapping of keys, got str 'hello'"]),
    ("top-level-list", "- train\n- lr\n", ["must be a mapping of keys, got a list"]),
    ("syntax-error", "train:\n  lr: [0.1\nmodel: {}\n", ["malformed YAML at line 3"]),
    ("bad-indent", "train:\n  lr: 0.1\n epochs: 3\n", ["malformed YAML at line 3"]),
    ("tab-indent", "train:\n\tlr: 0.1\n", ["malformed YAML at line 2", "found character '\\t'"]),
    ("unclosed-quote", "name: 'abc\n", ["malformed YAML at line 2"]),
    (
        "list-for-section",
        "train:\n  - lr\n  - 0.1\n",
        ["train must be a section (mapping), got a list"],
    ),
    ("scalar-for-section", "model: 100\n", ["model must be a section (mapping), got int 100"]),
    ("unknown-top", "trian:\n  lr: 0.1\n", ["unknown key trian; did you mean train?"]),
    ("unknown-train", "train:\n  lrr: 0.1\n", ["unknown key train.lrr; did you mean train.lr?"]),
    (
        "unknown-model",
        "model:\n  hiden: [10]\n",
        ["unknown key model.hiden; did you mean model.hidden?"],
    ),
    (
        "unknown-targets",
        "targets:\n  epsilom: 0.1\n",
        ["unknown key targets.epsilom; did you mean targets.epsilon?"],
    ),
    ("unknown-eval", "eval:\n  binz: 10\n", ["unknown key eval.binz; did you mean eval.bins?"]),
    ("unknown-data", "data:\n  scale: unit\n", ["unknown key data.scale"]),
    ("unknown-no-hint", "zzzz: 1\n", ["unknown key zzzz"]),
    ("unknown-empty-key", "'': 1\n", ["unknown key ''"]),
    ("unknown-newline-key", '"a\\nb": 1\n', ["unknown key 'a\\nb'"]),
    (
        "string-for-number",
        "train:\n  lr: fast\n",
        ["train.lr = 'fast' is invalid: expected a number"],
    ),
    (
        "float-for-int",
        "train:\n  epochs: 2.5\n",
        ["train.epochs = 2.5 is invalid: expected an integer"],
    ),
    (
        "string-for-int",
        "train:\n  batch_size: '32'\n",
        ["train.batch_size = '32' is invalid: expected an integer"],
    ),
    ("bool-for-int", "seed: true\n", ["seed = True is invalid: expected an integer"]),
    (
        "bool-for-list",
        "model:\n  hidden: true\n",
        ["model.hidden = True is invalid: expected a list"],
    ),
    (
        "float-in-list",
        "model:\n  hidden: [10.5]\n",
        ["model.hidden[0] = 10.5 is invalid: expected an integer"],
    ),
    ("int-for-bool", "model:\n  bias: 1\n", ["model.bias = 1 is invalid: expected true or false"]),
    ("date-for-int", "seed: 2024-01-01\n", ["seed = datetime.date(2024, 1, 1) is invalid"]),
    (
        "epsilon-range",
        "targets:\n  epsilon: 1.0\n",
        ["targets.epsilon = 1.0 is invalid: must be in [0, 1)"],
    ),
    ("negative-lr", "train:\n  lr: -0.1\n", ["train.lr = -0.1 is invalid: must be > 0"]),
    ("infinite-lr", "train:\n  lr: .inf\n", ["train.lr = inf is invalid: must be a finite"]),
    (
        "nan-decay",
        "train:\n  weight_decay: .nan\n",
        ["train.weight_decay = nan is invalid: must be a finite number"],
    ),
    ("momentum-1", "train:\n  momentum: 1.0\n", ["train.momentum = 1.0 is invalid"]),
    ("hidden-zero", "model:\n  hidden: [100, 0]\n", ["model.hidden[1] = 0 is invalid"]),
    (
        "hidden-huge",
        "model:\n  hidden: [1000000000]\n",
        ["model.hidden[0] = 1000000000 is invalid: layer sizes must be <= 100000"],
    ),
    ("bins-huge", "eval:\n  bins: 100000000\n", ["eval.bins = 100000000 is invalid"]),
    ("validation-range", "data:\n  validation: 60000\n", ["data.validation = 60000 is invalid"]),
    (
        "seed-huge",
        "seed: 100000000000000000000\n",
        ["seed = 100000000000000000000 is invalid: must be < 2**63"],
    ),
    ("gamma-zero", "train:\n  gamma: 0\n", ["train.gamma = 0.0 is invalid: must be in (0, 1]"]),
    ("unknown-choice", "loss:\n  type: hinge\n", ["loss.type = 'hinge' is invalid: choose one of"]),
    ("unknown-optimizer", "train:\n  optimizer: rmsprop\n", ["train.optimizer = 'rmsprop'"]),
    (
        "ce-sigmoid",
        "loss:\n  type: cross_entropy\n  output: sigmoid\n",
        [
            "loss.output = 'sigmoid' does not fit loss.type = 'cross_entropy': use loss.output = "
            "softmax"
        ],
    ),
    ("ce-linear", "loss:\n  output: linear\n", ["does not fit loss.type = 'cross_entropy'"]),
    (
        "bce-softmax",
        "loss:\n  type: bce\n  output: softmax\n",
        ["loss.output = 'softmax' does not fit loss.type = 'bce': use loss.output = sigmoid"],
    ),
    ("nesterov-no-momentum", "train:\n  nesterov: true\n", ["needs train.momentum > 0"]),
    (
        "duplicate-key",
        "train:\n  lr: 0.1\n  lr: 0.2\n",
        ["malformed YAML at line 3", "duplicate key lr"],
    ),
    (
        "duplicate-section",
        "train: {lr: 0.1}\nmodel: {}\ntrain: {epochs: 1}\n",
        ["line 3", "duplicate key train"],
    ),
    ("alias-bomb", BOMB, ["more than 10000 values once aliases are expanded"]),
    ("recursive-alias", "model:\n  hidden: &h [*h]\n", ["refers to the collection"]),
    (
        "deep-nesting",
        "model:\n  hidden: " + "[" * 2000 + "]" * 2000 + "\n",
        ["nested deeper than 32 levels"],
    ),
    ("huge-int", "seed: " + "9" * 5000 + "\n", ["a value cannot be read", "4300 digits"]),
    ("bad-date", "seed: 2001-13-45\n", ["a value cannot be read: month must be in 1..12"]),
    (
        "unsafe-tag",
        "name: !!python/object/apply:os.system ['echo pwned']\n",
        ["malformed YAML at line 1", "could not determine a constructor"],
    ),
    ("control-char", "name: a\x07b\n", ["character #x07 at position 7 is not allowed"]),
    ("name-traversal", "name: ../../x\n", ["name = '../../x' is invalid"]),
]


@pytest.mark.parametrize(
    ("text", "fragments"), [pytest.param(t, f, id=i) for i, t, f in CONFIG_FILES]
)
def test_bad_config_file(train, runs: Path, tmp_path: Path, text: str, fragments: list[str]):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    line = assert_one_line_error(train("-c", path), *fragments)
    assert str(path) in line
    assert_nothing_written(runs)


@pytest.mark.parametrize(
    ("blob", "fragments"),
    [
        pytest.param(b"name: caf\xe9\n", ["not UTF-8 text (byte 0xe9 at offset 9)"], id="latin-1"),
        pytest.param(
            b"\xff\xfen\x00a\x00", ["not UTF-8 text (byte 0xff at offset 0)"], id="utf-16"
        ),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00", ["not UTF-8 text (byte 0x89 at offset 0)"], id="binary"
        ),
        pytest.param(b"name: x\n" + b"#" * (1 << 20), ["larger than 1 MiB"], id="huge-file"),
    ],
)
def test_bad_config_bytes(train, runs: Path, tmp_path: Path, blob: bytes, fragments: list[str]):
    path = tmp_path / "bad.yaml"
    path.write_bytes(blob)
    assert_one_line_error(train("-c", path), str(path), *fragments)
    assert_nothing_written(runs)


def test_missing_config_file(train, runs: Path, tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    assert_one_line_error(
        train("-c", missing), f"{missing}: cannot read config file", "No such file"
    )
    assert_nothing_written(runs)


def test_folder_as_config_to_train(train, runs: Path, tmp_path: Path):
    # click checks -c itself (dir_okay=False); the group makes its usage error one line
    assert_one_line_error(train("-c", tmp_path), "is a directory", "train --help')")
    assert_nothing_written(runs)


def test_folder_as_config_to_compare(tmp_path: Path, runs: Path):
    folder = tmp_path / "looks_like.yaml"
    folder.mkdir()
    result = run_cli("compare", folder, "--runs-dir", runs)
    assert_one_line_error(result, f"{folder}: is a folder, not a config file")
    assert_nothing_written(runs)


# --------------------------------------------------------------------------- --set

OVERRIDES = [
    ("missing-equals", ["seed"], ["--set 'seed': expected key.path=value"]),
    ("empty-key", ["=1"], ["--set '=1': expected key.path=value"]),
    ("blank-key", ["  =1"], ["expected key.path=value"]),
    ("leading-dot", [".lr=1"], ["--set '.lr=1': empty part in the key '.lr'"]),
    ("double-dot", ["train..lr=1"], ["empty part in the key 'train..lr'"]),
    ("trailing-dot", ["train.=1"], ["empty part in the key 'train.'"]),
    ("unknown-key", ["train.lrr=0.1"], ["unknown key train.lrr; did you mean train.lr?"]),
    ("unknown-section", ["trian.lr=0.1"], ["unknown key trian; did you mean train?"]),
    ("unknown-top", ["bogus=1"], ["unknown key bogus"]),
    ("unparsable-list", ["train.lr=[1"], ["--set 'train.lr=[1': the value is not valid YAML"]),
    ("unparsable-map", ["model.hidden={a: 1"], ["the value is not valid YAML"]),
    ("unsafe-tag", ["name=!!python/object/apply:os.system [id]"], ["the value is not valid YAML"]),
    ("alias-in-value", ["model.hidden=*x"], ["the value is not valid YAML"]),
    ("section-to-scalar", ["train=3"], ["train must be a section (mapping), got int 3"]),
    ("section-to-list", ["model=[1, 2]"], ["model must be a section (mapping), got a list"]),
    ("leaf-as-section", ["train.lr.x=1"], ["train.lr is not a section, so train.lr.x cannot"]),
    ("string-for-number", ["train.lr=fast"], ["train.lr = 'fast' is invalid: expected a number"]),
    ("float-for-int", ["train.epochs=1.5"], ["train.epochs = 1.5 is invalid: expected an int"]),
    ("bool-for-list", ["model.hidden=false"], ["model.hidden = False is invalid"]),
    ("out-of-range", ["train.batch_size=0"], ["train.batch_size = 0 is invalid: must be >= 1"]),
    ("infinite", ["train.lr=.inf"], ["train.lr = inf is invalid: must be a finite number"]),
    ("incompatible", ["loss.type=bce"], ["loss.output = 'softmax' does not fit loss.type = 'bce'"]),
    ("data-too-small", ["data.train_subset=100000"], ["data.train_subset = 100000 is invalid"]),
    ("seed-option-huge", ["seed=99999999999999999999"], ["must be < 2**63"]),
    ("long-value", ["train.lr=" + "x" * 500], ["train.lr = 'xxxxx", "... is invalid"]),
    (
        "unknown-recalibration",
        ["eval.recalibration=[temperature,platt]"],
        ["eval.recalibration[1] = 'platt' is invalid: choose from temperature, vector, matrix"],
    ),
    (
        "recalibration-twice",
        ["eval.recalibration=[vector,vector]"],
        ["eval.recalibration[1] = 'vector' is invalid: listed twice"],
    ),
    (
        "recalibration-not-a-list",
        ["eval.recalibration=isotonic"],
        ["eval.recalibration = 'isotonic' is invalid: expected a list, e.g. [temperature, v"],
    ),
    # the encodings, losses and rules of issue 14: ranges, choices and combinations
    ("focal-gamma", ["loss.type=focal", "loss.gamma=-1"], ["loss.gamma = -1.0 is invalid"]),
    (
        "focal-schedule",
        ["loss.type=focal", "loss.gamma_schedule=flsd"],
        ["loss.gamma_schedule = 'flsd' is invalid: choose one of fixed, flsd53"],
    ),
    ("penalty", ["loss.confidence_penalty=-0.5"], ["loss.confidence_penalty = -0.5 is invalid"]),
    (
        "beta-above-1",
        ["targets.scheme=bootstrap_soft", "targets.beta=1.5"],
        ["targets.beta = 1.5 is invalid: must be in [0, 1]"],
    ),
    (
        "temperature-below-1",
        ["targets.scheme=distill", "targets.teacher=x", "targets.temperature=0.5"],
        ["targets.temperature = 0.5 is invalid: must be in [1, 1000]"],
    ),
    ("alpha-above-1", ["targets.alpha=2"], ["targets.alpha = 2.0 is invalid: must be in [0, 1]"]),
    ("no-teacher", ["targets.scheme=distill"], ["targets.teacher = '' is invalid: must name a"]),
    ("teacher-missing", ["targets.scheme=distill", "targets.teacher=nowhere"], ["no such run"]),
    (
        "teacher-is-a-file",
        ["targets.scheme=distill", "targets.teacher=pyproject.toml"],
        ["targets.teacher = 'pyproject.toml' is invalid: a file, not a run folder"],
    ),
    (
        "distill-with-mse",
        ["targets.scheme=distill", "targets.teacher=x", "loss.type=mse"],
        ["distillation needs loss.type = cross_entropy"],
    ),
    ("mixup-negative", ["train.mixup_alpha=-1"], ["train.mixup_alpha = -1.0 is invalid"]),
    (
        "mixup-batch-1",
        ["train.mixup_alpha=0.2", "train.batch_size=1"],
        ["needs train.batch_size >= 2"],
    ),
    ("shuffle-not-bool", ["train.shuffle=sometimes"], ["train.shuffle = 'sometimes' is invalid"]),
    (
        "true-class-smoothed",
        ["loss.delta=true_class", "targets.scheme=smooth"],
        ["loss.delta = 'true_class' is invalid: needs one-hot targets"],
    ),
    (
        "clamped-sigmoid",
        ["loss.delta=clamped", "loss.type=bce", "loss.output=sigmoid"],
        ["loss.delta = 'clamped' is invalid: needs loss.output = softmax"],
    ),
    (
        "tutorial-rule-with-ce",
        ["train.backprop=tutorial"],
        ["train.backprop = 'tutorial' is invalid", "needs loss.type = mse, loss.output = sigmoid"],
    ),
    (
        "tutorial-rule-with-adam",
        ["train.backprop=rashid", "loss.type=mse", "loss.output=sigmoid", "train.optimizer=adam"],
        ["needs plain SGD"],
    ),
    (
        "tanh-target-outside",
        ["loss.type=mse", "loss.output=tanh", "targets.scheme=soft", "targets.high=2"],
        ["targets.high = 2.0 is invalid: must lie in the range of loss.output = tanh"],
    ),
    ("tanh-with-ce", ["loss.output=tanh"], ["loss.output = 'tanh' does not fit loss.type"]),
    ("bootstrap-negative", ["eval.bootstrap=-1"], ["eval.bootstrap = -1 is invalid: must be >= 0"]),
    ("bootstrap-huge", ["eval.bootstrap=1000001"], ["eval.bootstrap = 1000001 is invalid"]),
]


@pytest.mark.parametrize(
    ("items", "fragments"), [pytest.param(s, f, id=i) for i, s, f in OVERRIDES]
)
def test_bad_set(train, runs: Path, items: list[str], fragments: list[str]):
    line = assert_one_line_error(train(*sets(*items)), *fragments)
    assert len(line) < 300
    assert_nothing_written(runs)


# --------------------------------------------------------------------------- names and paths

NAMES = [
    ("traversal", "../../x", "'../../x'"),
    ("parent", "..", "'..'"),
    ("absolute", "/etc/passwd", "'/etc/passwd'"),
    ("slash", "a/b", "'a/b'"),
    ("backslash", "a\\b", "'a\\\\b'"),
    ("hidden", ".hidden", "'.hidden'"),
    ("option-like", "-rf", "'-rf'"),
    ("space", "my run", "'my run'"),
    ("tab", "a\tb", "--set 'name=a\\tb': the value is not valid YAML"),
    ("newline", "a\nb", "name = 'a b'"),
    ("bell", "a\x07b", "not valid YAML"),
    ("escape", "\x1b[31mred", "not valid YAML"),
    ("unicode", "café", "'café'"),
    ("null-byte", "a\x00b", "not valid YAML"),
    ("too-long", "a" * 101, "at most 100 characters"),
    ("empty", "", "name = None is invalid: expected a string"),
    ("glob", "run*", "'run*'"),
]


@pytest.mark.parametrize(("name", "fragment"), [pytest.param(n, f, id=i) for i, n, f in NAMES])
def test_bad_run_name(train, runs: Path, tmp_path: Path, name: str, fragment: str):
    assert_one_line_error(train("--name", name), fragment)
    assert_nothing_written(runs)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing beside the runs folder


def test_runs_folder_is_a_file(tiny: Path, tmp_path: Path):
    runs_file = tmp_path / "runs.txt"
    runs_file.write_text("not a folder\n")
    result = run_cli(
        "train", "--data-dir", tiny, *sets(*TINY), env={"MNISTEXP_RUNS_DIR": str(runs_file)}
    )
    assert_one_line_error(result, str(runs_file), "cannot create the runs folder")
    assert runs_file.read_text() == "not a folder\n"


def test_runs_folder_is_a_file_by_option(train, tmp_path: Path):
    runs_file = tmp_path / "runs.txt"
    runs_file.write_text("x")
    # click checks --runs-dir itself (file_okay=False)
    assert_one_line_error(train("--runs-dir", runs_file), "is a file")
    assert runs_file.read_text() == "x"


def test_runs_folder_is_a_file_by_environment(tiny: Path, tmp_path: Path):
    runs_file = tmp_path / "runs.txt"
    runs_file.write_text("x")
    result = run_cli(
        "train", "--data-dir", tiny, *sets(*TINY), env={"MNISTEXP_RUNS_DIR": str(runs_file)}
    )
    assert_one_line_error(
        result, f"{runs_file}: cannot create the runs folder (it is a file, not a folder)"
    )
    assert runs_file.read_text() == "x"


def test_runs_folder_below_a_file(train, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(
        train("--runs-dir", blocker / "runs"),
        f"{blocker / 'runs'}: cannot create the runs folder (Not a directory)",
    )


def test_runs_folder_cannot_be_created(train):
    assert_one_line_error(
        train("--runs-dir", "/proc/mnistexp-runs"),
        "/proc/mnistexp-runs: cannot create the runs folder",
    )


def test_runs_folder_not_writable(train, runs: Path, monkeypatch: pytest.MonkeyPatch):
    runs.mkdir()
    runs.chmod(0o500)
    if os.geteuid() == 0:  # root writes through permissions: make the folder refuse instead
        mkdir = Path.mkdir

        def refuse(self: Path, *args, **kwargs) -> None:
            if self.parent == runs:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", refuse)
    try:
        assert_one_line_error(train(), str(runs), "Permission denied")
    finally:
        runs.chmod(0o700)
    assert_nothing_written(runs)


# --------------------------------------------------------------------------- data files


def _write_set(
    folder: Path, n_train: int = 40, n_test: int = 20, *, gz: bool = False
) -> dict[str, Path]:
    """Four small IDX files (plain or .gz) in ``folder``; role -> path."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 255, (n_train, 28, 28)).astype(np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 255, (n_test, 28, 28)).astype(np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    paths = {}
    for role, array in arrays.items():
        name = data.DATASETS["mnist"].files[role].filename
        paths[role] = data.write_idx(folder / (name if gz else name.removesuffix(".gz")), array)
    return paths


def _register(
    monkeypatch: pytest.MonkeyPatch,
    paths: dict[str, Path],
    mirrors: tuple[str, ...] = (),
    name: str = "bad",
) -> None:
    """Register the files as dataset ``name``, with checksums of their current bytes."""
    files = {}
    for role, path in paths.items():
        blob = path.read_bytes()
        try:
            raw = gzip.decompress(blob)
        except (OSError, EOFError):  # not gzip, or a damaged stream: take the bytes as they are
            raw = blob
        filename = data.DATASETS["mnist"].files[role].filename
        files[role] = data.FileSpec(
            filename, hashlib.md5(raw).hexdigest(), hashlib.sha256(raw).hexdigest(), len(raw)
        )
    monkeypatch.setitem(data.DATASETS, name, data.DatasetSpec(name, files, mirrors))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _flip_byte(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))


def _bad_magic(path: Path) -> None:
    path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])


def _bad_type(path: Path) -> None:
    path.write_bytes(b"\x00\x00\x07" + path.read_bytes()[3:])


def _html(path: Path) -> None:
    path.write_bytes(b"<html>404 Not Found</html>")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _fewer_labels(path: Path) -> None:
    data.write_idx(path, np.zeros(39, np.uint8))


def _label_12(path: Path) -> None:
    data.write_idx(path, np.full(40, 12, np.uint8))


def _small_images(path: Path) -> None:
    data.write_idx(path, np.zeros((40, 20, 20), np.uint8))


def _float_labels(path: Path) -> None:
    data.write_idx(path, np.zeros(40, np.float32))


# (id, role, damage, checksums taken after the damage?, gzip files?, fragments)
DATA = [
    (
        "truncated-vs-checksum",
        "train_images",
        _truncate,
        False,
        False,
        ["decompressed size is", "expected", "mnistexp data fetch --dest"],
    ),
    (
        "truncated-payload",
        "train_images",
        _truncate,
        True,
        False,
        ["truncated:", "data bytes, expected 31360 for shape (40, 28, 28)"],
    ),
    (
        "checksum-mismatch",
        "test_images",
        _flip_byte,
        False,
        False,
        ["sha256 of decompressed data is", "the file is corrupt"],
    ),
    ("wrong-magic", "train_labels", _bad_magic, True, False, ["not an IDX file (magic bytes 1234"]),
    ("wrong-type-code", "train_labels", _bad_type, True, False, ["unsupported IDX data type 0x07"]),
    ("empty-file", "test_labels", _empty, True, False, ["too short for an IDX header (0 bytes)"]),
    ("html-as-gz", "train_labels", _html, True, True, ["named .gz but is not gzip data"]),
    ("truncated-gzip", "train_images", _truncate, True, True, ["bad gzip stream"]),
    ("mismatched-counts", "train_labels", _fewer_labels, True, False, ["39 labels for 40 images"]),
    ("label-out-of-range", "train_labels", _label_12, True, False, ["label 12 is not a digit"]),
    (
        "wrong-image-shape",
        "train_images",
        _small_images,
        True,
        False,
        ["images are uint8 (40, 20, 20), expected uint8 (n, 28, 28)"],
    ),
    (
        "wrong-label-dtype",
        "train_labels",
        _float_labels,
        True,
        False,
        ["labels are float32 (40,), expected uint8"],
    ),
]


@pytest.mark.parametrize(
    ("role", "damage", "after", "gz", "fragments"),
    [pytest.param(*row[1:], id=row[0]) for row in DATA],
)
def test_bad_data_file(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    runs: Path,
    role: str,
    damage,
    after: bool,
    gz: bool,
    fragments: list[str],
):
    folder = tmp_path / "data"
    paths = _write_set(folder, gz=gz)
    if not after:
        _register(monkeypatch, paths)
    damage(paths[role])
    if after:
        _register(monkeypatch, paths)
    result = run_cli(
        "train",
        "--runs-dir",
        runs,
        "--data-dir",
        folder,
        "--no-progress",
        *sets("data.dataset=bad", "data.validation=10", "train.batch_size=10"),
    )
    line = assert_one_line_error(result, *fragments)
    assert data.DATASETS["mnist"].files[role].filename.removesuffix(".gz") in line
    assert_nothing_written(runs)


def test_data_dir_missing(train, tmp_path: Path, runs: Path):
    missing = tmp_path / "nowhere"
    assert_one_line_error(
        train("--data-dir", missing),
        f"not found in {missing} (the folder does not exist), given by --data-dir",
    )
    assert_nothing_written(runs)


def test_data_dir_without_files(train, tmp_path: Path, runs: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(
        train("--data-dir", empty), "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"
    )
    assert_nothing_written(runs)


def test_data_dir_missing_one_file(monkeypatch, tmp_path: Path, runs: Path):
    paths = _write_set(tmp_path / "data")
    _register(monkeypatch, paths)
    paths["test_labels"].unlink()
    result = run_cli(
        "train",
        "--runs-dir",
        runs,
        "--data-dir",
        tmp_path / "data",
        *sets("data.dataset=bad", "data.validation=10", "train.batch_size=10"),
    )
    assert_one_line_error(result, "t10k-labels-idx1-ubyte.gz: not found in")
    assert_nothing_written(runs)


def test_data_env_dir_missing(tmp_path: Path):
    result = run_cli("data", "verify", env={"MNISTEXP_DATA_DIR": str(tmp_path / "gone")})
    assert_one_line_error(result, "given by MNISTEXP_DATA_DIR")
    info = run_cli("data", "info", env={"MNISTEXP_DATA_DIR": str(tmp_path / "gone")})
    assert info.exit_code == 0 and "given by MNISTEXP_DATA_DIR" in info.stdout


def test_unknown_dataset(train, runs: Path):
    assert_one_line_error(train(*sets("data.dataset=cifar")), "data.dataset = 'cifar' is invalid")
    assert_nothing_written(runs)


# --------------------------------------------------------------------------- downloads


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxies: requests to 127.0.0.1 go straight to the test server."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def _serve(handler) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def www(tmp_path: Path, offline: None) -> Iterator[tuple[Path, str]]:
    """A local mirror: (its folder, its URL)."""
    root = tmp_path / "www"
    root.mkdir()
    yield from ((root, url) for url in _serve(functools.partial(_Files, directory=str(root))))


class _Redirect(http.server.BaseHTTPRequestHandler):
    """Answers every request with a redirect to plain HTTP on another host."""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://mirror.invalid/mnist/file.gz")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def redirecting(offline: None) -> Iterator[str]:
    yield from _serve(_Redirect)


@pytest.mark.parametrize(
    "mirror",
    [
        pytest.param("http://yann.lecun.com/exdb/mnist/", id="plain-http"),
        pytest.param("ftp://example.org/mnist/", id="ftp"),
        pytest.param("file:///etc/", id="file-url"),
    ],
)
def test_download_refuses_insecure_urls(monkeypatch, tmp_path: Path, mirror: str):
    _register(monkeypatch, _write_set(tmp_path / "src"), mirrors=(mirror,), name="mnist")
    dest = tmp_path / "dest"
    result = run_cli("data", "fetch", "--dest", dest, "--no-progress")
    assert_one_line_error(result, "download failed from all 1 mirrors", "refused, not HTTPS")
    assert [p for p in dest.rglob("*")] == []


def test_download_refuses_redirect_to_http(monkeypatch, tmp_path: Path, redirecting: str):
    _register(monkeypatch, _write_set(tmp_path / "src"), mirrors=(redirecting,), name="mnist")
    dest = tmp_path / "dest"
    result = run_cli("data", "fetch", "--dest", dest, "--no-progress")
    assert_one_line_error(result, "refused a redirect to http://mirror.invalid/")
    assert [p for p in dest.rglob("*")] == []


def test_download_refuses_gzip_bomb(monkeypatch, tmp_path: Path, www: tuple[Path, str]):
    root, url = www
    paths = _write_set(root, gz=True)
    _register(monkeypatch, paths, mirrors=(url,), name="mnist")
    paths["train_images"].write_bytes(gzip.compress(b"\0" * 31376 * 50))
    dest = tmp_path / "dest"
    result = run_cli("data", "fetch", "--dest", dest, "--no-progress")
    assert_one_line_error(
        result,
        "train-images-idx3-ubyte.gz: download failed",
        "decompresses to more than 31376 bytes",
    )
    assert [p for p in dest.rglob("*")] == []


def test_download_refuses_oversized_file(monkeypatch, tmp_path: Path, www: tuple[Path, str]):
    root, url = www
    paths = _write_set(root, gz=True)
    _register(monkeypatch, paths, mirrors=(url,), name="mnist")
    paths["train_labels"].write_bytes(os.urandom((1 << 20) + 4096))
    dest = tmp_path / "dest"
    result = run_cli("data", "fetch", "--dest", dest, "--no-progress")
    assert_one_line_error(
        result, "train-labels-idx1-ubyte.gz: download failed", f"larger than {48 + (1 << 20)} bytes"
    )
    assert [p.name for p in dest.iterdir()] == ["train-images-idx3-ubyte.gz"]  # verified


# --------------------------------------------------------------------------- compare inputs


@pytest.fixture(scope="module")
def good_runs(tmp_path_factory: pytest.TempPathFactory, tiny_data_dir) -> Path:
    """Two finished tiny runs (two experiments, one seed each), trained once per module."""
    from mnistexp.config.loading import load_config
    from mnistexp.orchestration.experiment import run_experiment

    folder, spec = tiny_data_dir
    root = tmp_path_factory.mktemp("good") / "runs"
    saved = dict(data.DATASETS)
    data.DATASETS["tiny"] = spec
    try:
        for hidden in (8, 12):
            cfg = load_config(None, [*TINY, f"model.hidden=[{hidden}]", "name=tiny"])
            outcome = run_experiment(cfg, runs_dir=root, data_dir=folder)
            assert outcome.state == "completed", outcome.message
    finally:
        data.DATASETS.clear()
        data.DATASETS.update(saved)
    return root


@pytest.fixture
def two_runs(good_runs: Path, tmp_path: Path, tiny: Path) -> tuple[Path, Path]:
    """A fresh copy of the good runs: (runs root, the run folder a case damages)."""
    root = tmp_path / "runs"
    shutil.copytree(good_runs, root)
    return root, sorted(root.iterdir())[0]


def _write(name: str, content: str | bytes):
    def damage(run: Path) -> None:
        path = run / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return damage


def _remove(name: str):
    return lambda run: (run / name).unlink()


def _edit_json(name: str, change):
    def damage(run: Path) -> None:
        doc = json.loads((run / name).read_text())
        change(doc)
        (run / name).write_text(json.dumps(doc))

    return damage


def _set_item(key: str, value):
    return lambda doc: doc.__setitem__(key, value)


def _old(damage):
    """``damage`` to a folder without config.json, as mnistexp wrote them before it."""

    def old(run: Path) -> None:
        (run / "config.json").unlink()
        damage(run)

    return old


def _del_item(key: str):
    return lambda doc: doc.pop(key)


RUN_DAMAGE = [
    # (id, damage, fragment of the one warning line; None: read without a warning)
    ("metrics-garbage", _write("metrics.json", "{not json"), "metrics.json: unreadable"),
    ("metrics-empty", _write("metrics.json", ""), "metrics.json: unreadable"),
    ("metrics-binary", _write("metrics.json", b"\xff\xfe\x00"), "metrics.json: unreadable"),
    ("metrics-list", _write("metrics.json", "[1, 2]"), "not a metrics report"),
    ("metrics-missing", _remove("metrics.json"), "metrics.json: missing"),
    ("metrics-no-test", _edit_json("metrics.json", _del_item("test")), "no test metrics"),
    (
        "metrics-newer-schema",
        _edit_json("metrics.json", _set_item("schema_version", 99)),
        "schema_version 99 is newer than this mnistexp reads (2)",
    ),
    (
        "metrics-bad-schema",
        _edit_json("metrics.json", _set_item("schema_version", "one")),
        "schema_version 'one' is not a version number",
    ),
    ("metrics-older-schema", _edit_json("metrics.json", _del_item("schema_version")), None),
    (
        "metrics-bad-bins",
        _edit_json("metrics.json", lambda d: d["test"].__setitem__("reliability", {"x": 1})),
        "test reliability bins malformed or empty; left out of the reliability diagram",
    ),
    ("status-garbage", _write("status.json", "{{"), "unreadable (status.json is not valid JSON"),
    ("status-list", _write("status.json", "[]"), "unreadable (status.json is not a JSON object)"),
    ("status-missing", _remove("status.json"), "unreadable (no status.json)"),
    ("status-empty", _write("status.json", ""), "unreadable (status.json is empty)"),
    ("status-truncated", _write("status.json", '{"state": "compl'), "status.json is not valid"),
    ("status-not-utf8", _write("status.json", b"\xff\xfe{}"), "status.json is not valid JSON"),
    ("status-no-state", _write("status.json", "{}"), "unreadable (status.json has no state)"),
    ("status-bad-state", _write("status.json", '{"state": "paused"}'), "unknown state 'paused'"),
    ("status-deep", _write("status.json", "[" * 100_000 + "]" * 100_000), "nested too deeply"),
    ("metrics-deep", _write("metrics.json", "[" * 100_000 + "]" * 100_000), "nested too deeply"),
    (
        "metrics-nan-accuracy",
        _edit_json("metrics.json", lambda d: d["test"].__setitem__("accuracy", float("nan"))),
        "test accuracy is nan",
    ),
    (
        "metrics-infinite-nll",
        _edit_json("metrics.json", lambda d: d["test"].__setitem__("nll", float("inf"))),
        "test.nll not finite",
    ),
    (
        "status-failed",
        _write("status.json", '{"state": "failed", "error": "boom"}'),
        "failed (boom); left out",
    ),
    # config.yaml of a folder without config.json (written before runs had it)
    ("config-garbage", _old(_write("config.yaml", "train: [1\n")), "config.yaml: malformed YAML"),
    ("config-missing", _old(_remove("config.yaml")), "config.yaml: cannot read config file"),
    (
        "config-old-key",
        _old(_write("config.yaml", "train:\n  learning_rate: 0.1\n")),
        "unknown key train.learning_rate",
    ),
    ("config-bomb", _old(_write("config.yaml", BOMB)), "more than 10000 values"),
    # config.json, the copy compare reads: unusable, it yields to config.yaml
    ("config-json-garbage", _write("config.json", "{not json"), None),
    ("config-json-list", _write("config.json", "[]"), None),
    ("config-json-missing", _remove("config.json"), None),
    ("config-json-bad-seed", _edit_json("config.json", lambda d: d.update(seed=-1)), None),
    (
        "config-json-old-key",
        _edit_json("config.json", lambda d: d["train"].update(learning_rate=0.1)),
        "unknown key train.learning_rate",
    ),
]


@pytest.mark.parametrize(
    ("damage", "fragment"), [pytest.param(d, f, id=i) for i, d, f in RUN_DAMAGE]
)
def test_corrupt_run_among_good_ones(two_runs, damage, fragment: str | None):
    root, victim = two_runs
    damage(victim)
    result = run_cli("compare", "--runs-dir", root, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    if fragment is None:
        assert warnings == []
        assert len(result.stdout.splitlines()) == 3  # header + two experiments
        return
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"warning: {victim}"), warnings
    assert fragment in warnings[0], warnings


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not a zip", id="garbage"),
        pytest.param(b"PK\x03\x04" + b"\0" * 40, id="truncated-zip"),
        pytest.param(b"", id="empty"),
    ],
)
def test_corrupt_predictions_cost_only_the_test(two_runs, content: bytes):
    root, victim = two_runs
    (victim / "predictions.npz").write_bytes(content)
    result = run_cli(
        "compare",
        "--runs-dir",
        root,
        "--baseline",
        "tiny@" + _hash8(victim),
        "--metrics",
        "accuracy",
        "--format",
        "csv",
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"no test ({victim / 'predictions.npz'}: unreadable" in result.stdout


def test_pickled_predictions_are_not_unpickled(two_runs):
    root, victim = two_runs
    arrays = {"predictions": np.array([object()], dtype=object), "labels": np.zeros(1)}
    np.savez(victim / "predictions.npz", **arrays)
    result = run_cli(
        "compare",
        "--runs-dir",
        root,
        "--baseline",
        "tiny@" + _hash8(victim),
        "--metrics",
        "accuracy",
        "--format",
        "csv",
    )
    assert result.exit_code == 0, result.output
    assert "unreadable (ValueError)" in result.stdout


def _relabel(run: Path) -> None:
    """Labels that are not the test labels: a permutation, so only a paired test notices."""
    arrays = dict(np.load(run / "predictions.npz"))
    arrays["labels"] = np.roll(arrays["labels"], 1)
    np.savez_compressed(run / "predictions.npz", **arrays)


def _relabel_to_match(run: Path) -> None:
    """Labels and predictions both replaced, with the accuracy metrics.json reports."""
    arrays = dict(np.load(run / "predictions.npz"))
    arrays["labels"] = np.roll(arrays["labels"], 1)
    arrays["predictions"] = np.where(
        np.roll(arrays["predictions"] == np.load(run / "predictions.npz")["labels"], 1),
        arrays["labels"],
        (arrays["labels"] + 1) % 10,
    )
    np.savez_compressed(run / "predictions.npz", **arrays)


def _no_rows(run: Path) -> None:
    empty = np.zeros(0, np.int64)
    np.savez(run / "predictions.npz", predictions=empty, labels=empty, probs=np.zeros((0, 10)))


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        pytest.param(_relabel, "not this run's test predictions", id="labels-not-test-labels"),
        pytest.param(_relabel_to_match, "are not the test labels", id="labels-and-predictions"),
        pytest.param(_no_rows, "predictions.npz: no rows", id="zero-rows"),
    ],
)
def test_predictions_that_are_not_the_runs_cost_only_the_test(two_runs, damage, fragment: str):
    root, victim = two_runs
    damage(victim)
    result = run_cli(
        "compare",
        "--runs-dir",
        root,
        "--baseline",
        "tiny@" + _hash8(victim),
        "--metrics",
        "accuracy",
        "--format",
        "csv",
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"no test ({victim / 'predictions.npz'}: " in result.stdout, result.stdout
    assert fragment in result.stdout, result.stdout


def test_history_that_is_not_utf8_costs_only_its_curves(two_runs, tmp_path: Path):
    root, victim = two_runs
    (victim / "history.csv").write_bytes(b"epoch,val_accuracy\n1,\xff\xfe\n")
    result = run_cli("compare", "--runs-dir", root, "--plot", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert (tmp_path / "plots" / "learning_curves.png").stat().st_size > 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "history.csv" in warnings[0], warnings


def test_reliability_bins_that_are_all_empty_cost_only_that_panel(two_runs, tmp_path: Path):
    root, victim = two_runs
    doc = json.loads((victim / "metrics.json").read_text())
    bins = doc["test"]["reliability"]
    m = len(bins["count"])
    bins.update(count=[0] * m, accuracy=[None] * m, mean_confidence=[None] * m)
    (victim / "metrics.json").write_text(json.dumps(doc))
    result = run_cli("compare", "--runs-dir", root, "--plot", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert (tmp_path / "plots" / "reliability.png").stat().st_size > 0


def _hash8(run: Path) -> str:
    return run.name.split("-")[-2]


def test_only_corrupt_runs(two_runs):
    root, _ = two_runs
    for run in root.iterdir():
        (run / "metrics.json").write_text("{")
    result = run_cli("compare", "--runs-dir", root)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert [line.startswith("warning: ") for line in lines] == [True, True, False]
    assert lines[-1] == "Error: nothing to compare: no run has finished with test metrics"


COMPARE_INPUTS = [
    ("empty-runs-folder", lambda tmp: (tmp / "runs").mkdir(), [], ["no run folders to compare"]),
    ("no-runs-folder", lambda tmp: None, [], ["no such runs folder"]),
    (
        "folder-not-a-run",
        lambda tmp: (tmp / "notes").mkdir(),
        ["notes"],
        ["nothing to compare: no run has finished"],
    ),
    (
        "file-not-a-run",
        lambda tmp: (tmp / "notes.txt").write_text("x"),
        ["notes.txt"],
        ["notes.txt: no such run folder, runs root or config file"],
    ),
    ("glob-matches-nothing", lambda tmp: None, ["nothing-*"], ["matches no run folder"]),
    (
        "missing-config-input",
        lambda tmp: None,
        ["missing.yaml"],
        ["missing.yaml: cannot read config file"],
    ),
]


@pytest.mark.parametrize(
    ("prepare", "inputs", "fragments"),
    [pytest.param(*row[1:], id=row[0]) for row in COMPARE_INPUTS],
)
def test_bad_compare_inputs(tmp_path: Path, monkeypatch, prepare, inputs, fragments):
    monkeypatch.chdir(tmp_path)
    prepare(tmp_path)
    result = run_cli("compare", *inputs, "--runs-dir", tmp_path / "runs")
    assert_one_line_error(result, *fragments)


def test_compare_unknown_correction(two_runs):
    root, _ = two_runs
    assert_one_line_error(
        run_cli("compare", "--runs-dir", root, "--baseline", "a", "--correction", "bogus"),
        "Invalid value for '--correction': 'bogus' is not one of 'holm', 'bh', 'none'",
    )


def test_compare_unknown_metric_and_baseline(two_runs):
    root, _ = two_runs
    assert_one_line_error(
        run_cli("compare", "--runs-dir", root, "--metrics", "acc"), "unknown metric acc"
    )
    assert_one_line_error(
        run_cli("compare", "--runs-dir", root, "--baseline", "nope"),
        "--baseline nope: no such experiment",
    )


# --------------------------------------------------------------------------- sweep files

SWEEP_FILES = [
    ("empty-file", "", ["empty sweep file", "e.g. 'base: configs/baseline.yaml'"]),
    ("empty-mapping", "{}\n", ["empty sweep; give some of base, set, grid"]),
    ("list", "- grid\n", ["a sweep must be a mapping of keys, got a list"]),
    ("syntax-error", "grid:\n  train.lr: [0.1\n", ["malformed YAML at line 3"]),
    ("empty-grid", "grid: {}\n", ["grid is empty; give it entries"]),
    ("null-grid", "grid:\nseeds: 0-1\n", ["grid is empty"]),
    ("empty-zip", "zip: {}\n", ["zip is empty"]),
    ("empty-runs", "runs: []\n", ["runs is empty"]),
    ("runs-not-list", "runs: {train.lr: 0.1}\n", ["runs: expected a list of mappings"]),
    ("grid-scalar", "grid:\n  train.lr: 0.1\n", ["grid: expected key.path: [value1, value2"]),
    ("grid-empty-list", "grid:\n  train.lr: []\n", ["grid: expected key.path: [value1"]),
    ("grid-list", "grid: [1, 2]\n", ["grid: expected key.path: [value1"]),
    (
        "duplicate-grid-key",
        "grid:\n  train.lr: [0.1]\n  train.lr: [0.2]\n",
        ["line 3", "duplicate key train.lr"],
    ),
    (
        "duplicate-top-key",
        "grid: {train.lr: [0.1]}\ngrid: {train.lr: [0.2]}\n",
        ["duplicate key grid"],
    ),
    (
        "unknown-top-key",
        "grids: {train.lr: [0.1]}\n",
        ["unknown sweep key grids; use base, set, grid", "did you mean grid?"],
    ),
    (
        "unknown-config-key",
        "grid:\n  train.lrr: [0.1, 0.2]\n",
        ["invalid run [train.lrr=0.1]: unknown key train.lrr; did you mean train.lr?"],
    ),
    (
        "invalid-value",
        "grid:\n  train.lr: [0.1, -1]\n",
        ["invalid run [train.lr=-1]: train.lr = -1.0 is invalid: must be > 0"],
    ),
    ("set-not-mapping", "set: [train.lr=0.1]\n", ["set: expected a mapping of key.path: value"]),
    ("seeds-backwards", "grid: {train.lr: [0.1]}\nseeds: 5-2\n", ["a range is A-B"]),
    ("seeds-too-many", "grid: {train.lr: [0.1]}\nseeds: 0-99999999\n", ["at most 10000 seeds"]),
    (
        "zip-unequal",
        "zip:\n  train.lr: [0.1, 0.2]\n  train.epochs: [1]\n",
        ["--zip lists must have the same length"],
    ),
    (
        "missing-base",
        "base: nowhere.yaml\ngrid: {train.lr: [0.1]}\n",
        ["nowhere.yaml: cannot read config file"],
    ),
    ("alias-bomb", BOMB, ["more than 10000 values"]),
]


@pytest.mark.parametrize(
    ("text", "fragments"), [pytest.param(t, f, id=i) for i, t, f in SWEEP_FILES]
)
def test_bad_sweep_file(tmp_path: Path, runs: Path, text: str, fragments: list[str]):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    result = run_cli("sweep", path, "--runs-dir", runs, "--dry-run")
    assert_one_line_error(result, *fragments)
    assert_nothing_written(runs)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(
            ["--grid", "train.lr"],
            ["--grid 'train.lr': expected key.path=value1"],
            id="grid-no-values",
        ),
        pytest.param(
            ["--grid", "train.lr=[0.1"],
            ["the values are not a valid YAML list"],
            id="grid-bad-yaml",
        ),
        pytest.param(
            ["--zip", "train.lr=0.1,0.2", "--zip", "train.epochs=1"],
            ["--zip lists must have the same length"],
            id="zip-unequal",
        ),
        pytest.param(
            ["--grid", "train.lr=0.1", "--grid", "train.lr=0.2"],
            ["train.lr is swept twice"],
            id="grid-twice",
        ),
        pytest.param(["--seeds", "x"], ["seeds 'x': expected N"], id="seeds-word"),
        pytest.param(["--set", "=1"], ["--set '=1': expected key.path=value"], id="set-no-key"),
    ],
)
def test_bad_sweep_options(tmp_path: Path, runs: Path, args: list[str], fragments: list[str]):
    result = run_cli("sweep", "--runs-dir", runs, "--dry-run", *args)
    assert_one_line_error(result, *fragments)
    assert_nothing_written(runs)


def test_missing_sweep_file(tmp_path: Path, runs: Path):
    result = run_cli("sweep", tmp_path / "nope.yaml", "--runs-dir", runs, "--dry-run")
    assert_one_line_error(result, "nope.yaml: cannot read sweep file")


# --------------------------------------------------------------------------- inputs that escaped

LONG_NAME = "n" * 300  # longer than any filesystem's NAME_MAX (255 bytes)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(
            ["sweep", "--seeds", "\u00b2-\u00b3", "--dry-run"],
            ["a range is A-B"],
            id="superscripts",
        ),
        pytest.param(
            ["sweep", "--seeds", "\u0663", "--dry-run"], ["expected N"], id="arabic-digit"
        ),
        pytest.param(
            ["sweep", "--seeds", "1,\u00b2", "--dry-run"], ["a list holds seeds"], id="list"
        ),
        pytest.param(["sweep", "--seeds", "9" * 40, "--dry-run"], ["expected N"], id="huge"),
        pytest.param(
            ["compare", "x.yaml", "--seeds", "0-10000"],
            ["seeds '0-10000': at most 10000 seeds"],
            id="compare-seeds-bound",
        ),
        pytest.param(["train", "--runs-dir", ""], ["--runs-dir is empty"], id="empty-runs-dir"),
        pytest.param(
            ["sweep", "--runs-dir", "", "--dry-run"], ["--runs-dir is empty"], id="sweep-empty"
        ),
        pytest.param(["compare", "--runs-dir", ""], ["--runs-dir is empty"], id="compare-empty"),
        pytest.param(
            ["train", "--runs-dir", LONG_NAME],
            ["--runs-dir: the name", "longer than the filesystem"],
            id="long-runs-dir",
        ),
        pytest.param(
            ["train", "--data-dir", LONG_NAME],
            ["--data-dir: the name", "is 300 bytes"],
            id="long-data-dir",
        ),
        pytest.param(["compare", LONG_NAME], ["input: the name"], id="long-compare-input"),
        pytest.param(
            ["compare", "--runs-dir", LONG_NAME], ["--runs-dir: the name"], id="long-root"
        ),
        pytest.param(
            ["sweep", "--runs-dir", LONG_NAME, "--dry-run"],
            ["--runs-dir: the name"],
            id="long-sweep-root",
        ),
        pytest.param(
            ["data", "fetch", "--dest", LONG_NAME], ["--dest folder: the name"], id="long-dest"
        ),
        pytest.param(
            ["sweep", "--emit", "slurm-array", LONG_NAME + "/x.txt"],
            ["command file: the name"],
            id="long-emit-file",
        ),
    ],
)
def test_inputs_that_escaped(tmp_path: Path, monkeypatch, args: list[str], fragments: list[str]):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run_cli(*args), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written anywhere


def test_absurd_epochs_are_refused(train, runs: Path):
    assert_one_line_error(
        train(*sets("train.epochs=10000000")),
        "train.epochs = 10000000 is invalid: must be <= 100000",
    )
    assert_nothing_written(runs)


HUGE_MODEL = "model.hidden=[100000,100000,100000,100000,100000]"  # 40 G parameters


def test_a_model_too_large_for_memory_is_refused_before_a_claim(train, runs: Path):
    line = assert_one_line_error(train(*sets(HUGE_MODEL)), "needs about", "GiB of memory")
    assert "use smaller layers" in line
    assert_nothing_written(runs)


def test_a_sweep_with_a_model_too_large_trains_nothing(tiny: Path, runs: Path):
    result = run_cli(
        "sweep", "--runs-dir", runs, "--data-dir", tiny, *sets(*TINY), "--grid",
        "model.hidden=[16],[100000,100000,100000,100000,100000]", "-j", "2", "--no-progress",
    )  # fmt: skip
    assert_one_line_error(result, "invalid run", "needs about")
    assert_nothing_written(runs)


def test_a_fifo_as_config_is_refused_not_waited_on(train, runs: Path, tmp_path: Path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    assert_one_line_error(train("-c", fifo), f"{fifo}: not a regular file")
    sweep = run_cli("sweep", fifo, "--runs-dir", runs, "--dry-run")
    assert_one_line_error(sweep, f"{fifo}: not a regular file, so not a sweep file")
    assert_nothing_written(runs)


@pytest.mark.parametrize("where", ["below-a-file", "in-proc"])
def test_an_output_that_cannot_be_created_is_refused_before_training(
    tiny: Path, runs: Path, tmp_path: Path, where: str
):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "plots" if where == "below-a-file" else Path("/proc/mnistexp/plots")
    config = tmp_path / "tiny.yaml"
    config.write_text("data:\n  dataset: tiny\n  validation: 100\nmodel:\n  hidden: [8]\n")
    plotted = run_cli("compare", config, "--seeds", "0", "--runs-dir", runs, "--data-dir", tiny,
                      "--plot", out)  # fmt: skip
    assert_one_line_error(plotted, f"{out}: cannot create the --plot folder")
    emitted = run_cli("sweep", "-c", config, "--emit", "slurm-array", out / "cmds.txt")
    assert_one_line_error(emitted, "cannot create the folder of the command file")
    assert_nothing_written(runs)


@pytest.mark.slow  # draws every figure twice
def test_figures_are_written_atomically(two_runs, tmp_path: Path, monkeypatch):
    """A write that fails half-way (a full disk) leaves the old figure, not a broken one."""
    root, _ = two_runs
    plots = tmp_path / "plots"
    assert run_cli("compare", "--runs-dir", root, "--plot", plots).exit_code == 0
    before = (plots / "reliability.png").read_bytes()
    from mnistexp.core import atomic

    real_open = atomic.AtomicFile.open

    class FullDisk:  # the file takes a few bytes, then the disk is full
        def __init__(self, handle):
            self.handle, self.room = handle, 100

        def write(self, data):
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= len(data)
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

    def open_on_a_full_disk(self):
        self._handle = FullDisk(real_open(self))
        return self._handle

    monkeypatch.setattr(atomic.AtomicFile, "open", open_on_a_full_disk)
    result = run_cli("compare", "--runs-dir", root, "--plot", plots)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith(f"Error: cannot write {plots}")
    assert "No space left on device" in result.stderr
    assert (plots / "reliability.png").read_bytes() == before
    assert not [p for p in plots.iterdir() if p.name.startswith(".")]


def test_compare_filters_seed_per_run(tiny: Path, runs: Path, tmp_path: Path):
    config = tmp_path / "tiny.yaml"
    config.write_text("data:\n  dataset: tiny\n  validation: 100\nmodel:\n  hidden: [8]\n")
    base = ["compare", config, "--runs-dir", runs, "--data-dir", tiny, "--format", "json"]
    assert run_cli(*base, "--seeds", "0-1").exit_code == 0
    for seed in (0, 1):
        result = run_cli(*base, "--seeds", "0-1", "--filter", f"seed={seed}")
        assert result.exit_code == 0, result.output
        (experiment,) = json.loads(result.stdout)["experiments"]
        assert experiment["seeds"] == [seed], experiment


# --------------------------------------------------------------------------- security audit

SOURCES = sorted((Path(__file__).parent.parent / "mnistexp").rglob("*.py"))
FORBIDDEN = {
    "eval",
    "exec",
    "compile",
    "__import__",
    "yaml.load",
    "yaml.unsafe_load",
    "yaml.full_load",
    "yaml.load_all",
    "yaml.unsafe_load_all",
    "os.system",
    "os.popen",
}
PICKLE_ALLOWED = {("workers.py", "_init_worker")}  # the parent's own registry, in memory


def _calls(path: Path) -> Iterator[tuple[str, ast.Call, str]]:
    """(dotted callee name, call node, innermost enclosing function) for every call."""

    def walk(node: ast.AST, where: str) -> Iterator[tuple[str, ast.Call, str]]:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef) else where
            if isinstance(child, ast.Call):
                yield ast.unparse(child.func), child, where
            yield from walk(child, inner)

    yield from walk(ast.parse(path.read_text(), filename=str(path)), "<module>")


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_source_has_no_unsafe_loading(path: Path):
    for callee, call, where in _calls(path):
        assert callee not in FORBIDDEN, f"{path.name}: {callee} in {where}"
        if callee in ("np.load", "numpy.load"):
            keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
            assert keywords.get("allow_pickle") == "False", f"{path.name}: np.load in {where}"
        if callee.startswith("pickle.load"):
            assert (path.name, where) in PICKLE_ALLOWED, f"{path.name}: {callee} in {where}"


def test_mirrors_are_https():
    for spec in data.DATASETS.values():
        assert all(m.startswith("https://") for m in spec.mirrors), spec.name


# --------------------------------------------------------------------------- emitted commands

INJECTED = "r\ntouch PWNED\nx"  # quoted, line 2 of the command file is `touch PWNED`


def _in_folder(name: str, what: str):
    """Put the config (or a sweep file naming it) in a folder called ``name``."""

    def prepare(tmp_path: Path) -> list[str]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "base.yaml").write_text("train:\n  epochs: 1\n")
        if what == "config":
            return ["-c", str(folder / "base.yaml")]
        (folder / "sweep.yaml").write_text("base: base.yaml\nseeds: 0-1\n")
        return [str(folder / "sweep.yaml")]

    return prepare


CONTROL_CHARACTERS = [
    # (id, prepare(tmp_path) -> sweep options, environment, fragment of the one error line)
    ("runs-dir-newline", lambda _: ["--runs-dir", INJECTED], {}, "--runs-dir"),
    ("runs-dir-cr", lambda _: ["--runs-dir", "r\rx"], {}, "'\\r'"),
    ("runs-dir-escape", lambda _: ["--runs-dir", "r\x1b[2Jx"], {}, "'\\x1b'"),
    ("runs-dir-line-separator", lambda _: ["--runs-dir", "r\u2028x"], {}, "--runs-dir"),
    ("runs-env", lambda _: [], {"MNISTEXP_RUNS_DIR": INJECTED}, "--runs-dir"),
    ("data-dir", lambda _: ["--data-dir", INJECTED], {}, "--data-dir"),
    ("data-env", lambda _: [], {"MNISTEXP_DATA_DIR": INJECTED}, "MNISTEXP_DATA_DIR"),
    ("config-folder", _in_folder(INJECTED, "config"), {}, "--config"),
    ("sweep-file-folder", _in_folder(INJECTED, "sweep"), {}, "--config"),
]


@pytest.mark.parametrize("emit", ["commands", "slurm-array"])
@pytest.mark.parametrize(
    ("prepare", "env", "fragment"),
    [pytest.param(*row[1:], id=row[0]) for row in CONTROL_CHARACTERS],
)
def test_emitted_commands_refuse_control_characters(
    tmp_path: Path, monkeypatch, emit: str, prepare, env: dict[str, str], fragment: str
):
    """A command file is read line by line (GNU parallel, a Slurm task's ``sed -n Kp``): a
    newline in a path, however quoted, would run what follows it as a command of its own."""
    monkeypatch.chdir(tmp_path)
    args = prepare(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    target = ["slurm-array", "cmds/sweep.txt"] if emit == "slurm-array" else [emit]
    result = run_cli("sweep", *args, "--emit", *target, env=env)
    assert_one_line_error(result, fragment, "control character", "cannot carry on one line")
    assert sorted(tmp_path.rglob("*")) == before  # no command file, no runs folder


def test_a_command_file_whose_name_holds_a_newline_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("sweep", "--emit", "slurm-array", "cmds\ntouch PWNED\n/sweep.txt")
    assert_one_line_error(result, "--emit slurm-array FILE", "control character '\\n'")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- sweep size

TEN = ",".join(str(v) for v in range(1, 11))


def _never_expanded(*args, **kwargs):
    raise AssertionError("the sweep was expanded before its size was checked")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(
            [f"--grid={k}={TEN}" for k in ("a.b", "train.lr", "train.epochs", "c.d", "e.f", "g")],
            "10 x 10 x 10 x 10 x 10 x 10 = 1,000,000 runs, more than 100,000",
            id="six-keys-of-ten",
        ),
        pytest.param(
            ["--grid", f"train.lr={TEN},11", "--seeds", "0-9999"],
            "11 x 10000 = 110,000 runs",
            id="grid-times-seeds",
        ),
        pytest.param(
            [
                "--zip",
                f"train.lr={TEN}",
                "--zip",
                f"train.epochs={TEN}",
                "--grid",
                "eval.bins=" + ",".join(str(v) for v in range(1, 101)),
                "--seeds",
                "0-101",
            ],
            "100 x 10 x 102 = 102,000 runs",
            id="grid-zip-seeds",
        ),
    ],
)
def test_a_sweep_too_large_is_refused_before_it_is_expanded(
    tmp_path: Path, runs: Path, monkeypatch, args: list[str], fragment: str
):
    monkeypatch.setattr("mnistexp.orchestration.sweep.load_config", _never_expanded)
    result = run_cli("sweep", "--runs-dir", runs, "--dry-run", *args)
    assert_one_line_error(result, fragment, "split it into several sweeps")
    assert_nothing_written(runs)


def test_a_sweep_file_too_large_is_refused_before_it_is_expanded(
    tmp_path: Path, runs: Path, monkeypatch
):
    monkeypatch.setattr("mnistexp.orchestration.sweep.load_config", _never_expanded)
    path = tmp_path / "sweep.yaml"
    path.write_text(f"grid:\n  train.lr: [{TEN}]\n  train.epochs: [{TEN}]\nseeds: 0-1000\n")
    result = run_cli("sweep", path, "--runs-dir", runs, "--emit", "commands")
    assert_one_line_error(result, "10 x 10 x 1001 = 100,100 runs, more than 100,000")
    assert_nothing_written(runs)


def test_a_sweep_at_the_bound_is_expanded(monkeypatch):
    from mnistexp.orchestration import sweep as lib

    spec = lib.spec_from_options(grids=[f"train.lr={TEN}"], seeds="0-9999")
    assert lib.check_size(spec) == 100_000


# --------------------------------------------------------------------------- whole numbers

NOT_ASCII_NUMBERS = ["\u0663", "\u00b3", "\uff13", "1_0"]  # Arabic-Indic 3, superscript 3,
# fullwidth 3, and a Python literal: int() reads three of them, str.isdigit all but the last


@pytest.mark.parametrize("text", NOT_ASCII_NUMBERS, ids=["arabic", "superscript", "wide", "_"])
@pytest.mark.parametrize(
    ("args", "option"),
    [
        pytest.param(["train", "--print-config", "--seed"], "'--seed'", id="train-seed"),
        pytest.param(["compare", "x.yaml", "-j"], "'--jobs'", id="compare-jobs"),
        pytest.param(["sweep", "--dry-run", "-j"], "'--jobs'", id="sweep-jobs"),
        pytest.param(
            ["sweep", "--emit", "slurm-array", "f.txt", "--array-limit"],
            "'--array-limit'",
            id="sweep-array-limit",
        ),
    ],
)
def test_whole_numbers_are_ascii_digits_in_every_command(
    tmp_path: Path, monkeypatch, args: list[str], option: str, text: str
):
    monkeypatch.chdir(tmp_path)
    line = assert_one_line_error(run_cli(*args, text), option, "is not a whole number in ASCII")
    assert repr(text) in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", NOT_ASCII_NUMBERS, ids=["arabic", "superscript", "wide", "_"])
@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_seeds_are_ascii_digits_in_every_command(tmp_path: Path, monkeypatch, command, text):
    """--seeds is one parser in both commands (sweep's), under the same rule for numbers."""
    monkeypatch.chdir(tmp_path)
    args = ["compare", "x.yaml"] if command == "compare" else ["sweep", "--dry-run"]
    line = assert_one_line_error(run_cli(*args, "--seeds", text), "expected N (one seed)")
    assert line == f"Error: seeds {text!r}: expected N (one seed), A-B or A,B,C"
    assert list(tmp_path.iterdir()) == []


def test_every_integer_option_reads_ascii_digits_only():
    """One parser for every whole number of the CLI (sweep --seeds has its own, the same rule)."""
    import click

    from mnistexp.cli.common import AsciiIntRange

    def commands(group: click.Group) -> Iterator[click.Command]:
        for command in group.commands.values():
            yield from commands(command) if isinstance(command, click.Group) else [command]

    numbers = [
        (command.name, param.name, param.type)
        for command in commands(main)
        for param in command.params
        if isinstance(param.type, click.types.IntParamType)
    ]
    assert {("train", "seed"), ("compare", "jobs"), ("sweep", "jobs")} <= {n[:2] for n in numbers}
    assert [n[:2] for n in numbers if not isinstance(n[2], AsciiIntRange)] == []


# --------------------------------------------------------------------------- teachers


def _arrays(change):
    """Rewrite a teacher's model.npz with ``change`` applied to its arrays."""

    def damage(model: Path) -> None:
        with np.load(model) as npz:
            arrays = dict(npz)
        change(arrays)
        np.savez(model, **arrays)

    return damage


TEACHER_MODELS = [
    # (id, damage(model.npz path), fragments of the one error line)
    (
        "narrower-layer",
        _arrays(lambda a: a.update(W0=np.zeros((784, 8), np.float32))),
        ["W0 is float32 (784, 8)", "needs float (784, 16)"],
    ),
    (
        "wider-output",
        _arrays(lambda a: a.update(W1=np.zeros((16, 12)), b1=np.zeros(12))),
        ["W1 is float64 (16, 12)", "needs float (16, 10)"],
    ),
    ("missing-bias", _arrays(lambda a: a.pop("b1")), ["no array b1"]),
    ("extra-layer", _arrays(lambda a: a.update(W2=np.zeros((10, 10)))), ["array W2 is not"]),
    ("text", _arrays(lambda a: a.update(b0=np.array(["x"] * 16))), ["b0 is <U1 (16,)"]),
    ("not-npz", lambda model: model.write_bytes(b"not a zip"), ["model.npz"]),
]


@pytest.mark.parametrize(
    ("damage", "fragments"), [pytest.param(d, f, id=i) for i, d, f in TEACHER_MODELS]
)
def test_a_teacher_whose_model_does_not_fit_its_config(
    train, tiny: Path, runs: Path, tmp_path: Path, damage, fragments: list[str]
):
    taught = run_cli("train", "--runs-dir", tmp_path / "teachers", "--data-dir", tiny,
                     *sets(*TINY))  # fmt: skip
    assert taught.exit_code == 0, taught.output
    (teacher,) = (tmp_path / "teachers").iterdir()
    damage(teacher / "model.npz")
    result = train(*sets("targets.scheme=distill", f"targets.teacher={teacher}"))
    assert_one_line_error(result, f"{teacher / 'model.npz'}", *fragments)
    assert_nothing_written(runs)


# --------------------------------------------------------------------------- unusable runs folders


def _or_skip(command: list[str], what: str) -> None:
    """Run ``command``, skipping the test with a reason where this machine cannot ``what``
    (root is needed; CI runs as root)."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot {what} here: {done.stderr.strip() or done.returncode}")


@contextlib.contextmanager
def _tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A small tmpfs mounted on ``folder`` (root only), unmounted afterwards."""
    folder.mkdir()
    _or_skip(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], "mount a tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> None:
    with contextlib.suppress(OSError), (folder / "filler").open("wb", buffering=0) as handle:
        while True:  # until No space left on device
            handle.write(bytes(4096))


@contextlib.contextmanager
def unusable_runs_folder(folder: Path, kind: str) -> Iterator[Path]:
    """A runs folder that exists but takes no run: on a read-only mount, on a full disk, or
    without write permission (for root, which writes through permission bits: immutable)."""
    if kind == "full":
        with _tmpfs(folder, "size=64k") as mounted:
            _fill(mounted)
            yield mounted
    elif kind == "read-only":
        with _tmpfs(folder, "ro,size=64k") as mounted:
            yield mounted
    else:
        folder.mkdir()
        folder.chmod(0o500)
        if os.geteuid() == 0:
            _or_skip(["chattr", "+i", str(folder)], "make a folder immutable")
        try:
            yield folder
        finally:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
            folder.chmod(0o700)


UNUSABLE = ["read-only", "full", "not-writable"]


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("kind", UNUSABLE)
def test_a_runs_folder_that_takes_no_run_is_one_line_in_both_modes(
    tiny: Path, tmp_path: Path, kind: str, jobs: str
):
    """-j 1 and -j 2 agree: the folder is probed before anything trains (not N failed runs
    and a --retry-failed hint for folders that do not exist)."""
    with unusable_runs_folder(tmp_path / "runs", kind) as runs:
        before = sorted(runs.rglob("*"))
        result = run_cli("sweep", "--runs-dir", runs, "--data-dir", tiny, *sets(*TINY),
                         "--seeds", "0-2", "-j", jobs, "--no-progress")  # fmt: skip
        assert_one_line_error(result, f"{runs}: cannot write into the runs folder")
        assert sorted(runs.rglob("*")) == before


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("kind", UNUSABLE)
def test_a_run_that_cannot_create_its_folder_stops_the_sweep_in_both_modes(
    tiny: Path, tmp_path: Path, monkeypatch, kind: str, jobs: str
):
    """The folder goes bad after the sweep's check (here: the check is skipped): the first
    run that cannot claim its folder stops the sweep with its one line, in both modes."""
    from mnistexp.store import runs as runs_module

    monkeypatch.setattr(runs_module, "check_runs_root", runs_module.make_runs_root)
    with unusable_runs_folder(tmp_path / "runs", kind) as runs:
        before = sorted(runs.rglob("*"))
        result = run_cli("sweep", "--runs-dir", runs, "--data-dir", tiny, *sets(*TINY),
                         "--seeds", "0-2", "-j", jobs, "--no-progress")  # fmt: skip
        line = assert_one_line_error(result, f"{runs}/", "cannot", "(")
        assert "retry" not in line and "failed" not in result.output
        assert sorted(runs.rglob("*")) == before


# --------------------------------------------------------------------------- config semantics

LONG_KEY = "k" * 100_000


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param(
            "train:\n  <<: [{lr: 0.3}, {lr: 0.4}]\n",
            ["lr is in more than one mapping of a merge sequence", "line 2"],
            id="merge-sequence-conflict",
        ),
        pytest.param(
            "model: &m {hidden: [16]}\neval:\n  <<: [*m, {hidden: [8]}]\n",
            ["hidden is in more than one mapping of a merge sequence"],
            id="merge-sequence-conflict-through-aliases",
        ),
        pytest.param(f"train:\n  ? {LONG_KEY}\n  : 1\n", ["unknown key train.kkkk"], id="long-key"),
        pytest.param(
            f"train:\n  ? {LONG_KEY}\n  : 1\n  ? {LONG_KEY}\n  : 2\n",
            ["duplicate key kkkk"],
            id="long-dup",
        ),
    ],
)
def test_config_semantics_are_refused_in_one_short_line(
    train, runs: Path, tmp_path: Path, text: str, fragments: list[str]
):
    config = tmp_path / "x.yaml"
    config.write_text(text)
    line = assert_one_line_error(train("-c", config), *fragments)
    assert len(line) < 400, len(line)
    assert_nothing_written(runs)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--set", f"{LONG_KEY}=1"], id="set-long-key"),
        pytest.param(["--set", f"train.{LONG_KEY}=1"], id="set-long-nested-key"),
        pytest.param(["--set", f"seed.{LONG_KEY}=1"], id="set-under-a-leaf"),
        pytest.param(["--set", f"{{{LONG_KEY}: 1}}=1"], id="set-long-odd-key"),
    ],
)
def test_a_long_key_is_shortened_in_the_error(train, runs: Path, args: list[str]):
    result = train(*args)
    line = assert_one_line_error(result)
    assert len(line) < 400, len(line)
    assert_nothing_written(runs)


def test_a_long_key_in_a_sweep_file_is_shortened(runs: Path, tmp_path: Path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"{LONG_KEY}: 1\n")
    line = assert_one_line_error(run_cli("sweep", sweep, "--runs-dir", runs, "--dry-run"))
    assert len(line) < 400, len(line)


def test_merge_keys_without_conflict_still_work(tmp_path: Path):
    from mnistexp.config.loading import load_config

    config = tmp_path / "x.yaml"
    config.write_text("train:\n  <<: [{lr: 0.3}, {epochs: 2}]\n  lr: 0.5\n")
    cfg = load_config(config)
    assert (cfg.train.lr, cfg.train.epochs) == (0.5, 2)


def test_set_with_a_mapping_merges_into_the_section(tmp_path: Path):
    from mnistexp.config.loading import load_config

    config = tmp_path / "x.yaml"
    config.write_text("train:\n  lr: 0.5\n  epochs: 3\n")
    cfg = load_config(config, ["train={batch_size: 7, lr: 0.3}"])
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.batch_size) == (0.3, 3, 7)
    cfg = load_config(config, ["train={}"])
    assert (cfg.train.lr, cfg.train.epochs) == (0.5, 3)
