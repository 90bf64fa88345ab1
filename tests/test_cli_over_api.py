"""The command line is a layer over the Python API: ``mnistexp train`` and ``mnistexp compare``
call :mod:`mnistexp.api` (the code a notebook runs), and a bad input is one message in both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from test_compare import two_experiments

from mnistexp import api
from mnistexp.cli import main
from mnistexp.core.errors import UsageError
from tests.conftest import TINY


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[dict[str, Any]]:
    """Replace ``api.<name>`` by a wrapper that records each call's arguments and delegates."""
    calls: list[dict[str, Any]] = []
    real = getattr(api, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append({"args": args, **kwargs})
        return real(*args, **kwargs)

    monkeypatch.setattr(api, name, wrapper)
    return calls


@pytest.fixture
def two(tmp_path: Path) -> Path:
    return two_experiments(tmp_path / "runs")


def test_compare_gathers_and_compares_through_the_api(two: Path, monkeypatch: pytest.MonkeyPatch):
    gathered = spy(monkeypatch, "gather_runs")
    built = spy(monkeypatch, "build_comparison")
    printed = cli("compare", "--runs-dir", str(two), "--baseline", "base", "--format", "markdown")
    assert printed.exit_code == 0, printed.output
    (call,) = gathered
    assert call["args"] == ((),) and call["runs_dir"] == str(two) and call["seeds"] == (0, 1, 2)
    (comparison,) = built
    assert comparison["baseline"] == "base"
    assert printed.stdout == api.compare(runs_dir=two, baseline="base").render("markdown")


def test_train_loads_and_trains_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    loaded = spy(monkeypatch, "run_config")
    results: list[api.RunResult] = []

    def fake_train_run(cfg: Any, **kwargs: Any) -> api.RunResult:  # no training: the CLI prints
        results.append(api.RunResult(tmp_path / "x", "completed", True, None, "hint", 0.0))
        assert cfg.seed == 4 and kwargs["runs_dir"] == str(tmp_path)
        return results[-1]

    monkeypatch.setattr(api, "train_run", fake_train_run)
    printed = cli("train", "--runs-dir", str(tmp_path), "--seed", "4", "--no-progress")
    assert (printed.exit_code, len(loaded), len(results)) == (0, 1, 1), printed.output
    assert loaded[0]["seed"] == 4
    hint = "already completed; not retrained (--force retrains)"
    assert printed.stdout == f"{tmp_path / 'x'}: {hint}\n"


COMPARE_ERRORS = [
    pytest.param(["--seeds", "3-1"], {"seeds": "3-1"}, id="seed-range"),
    pytest.param(["--seeds", "0,0"], {"seeds": "0,0"}, id="seed-twice"),
    pytest.param(["--set", "train.lr=1"], {"overrides": ["train.lr=1"]}, id="set-without-config"),
    pytest.param(["--metrics", "acc"], {"metrics": ["acc"]}, id="metric"),
]  # fmt: skip


@pytest.mark.parametrize(("cli_args", "kwargs"), COMPARE_ERRORS)
def test_a_bad_compare_input_is_one_message_from_the_api_and_the_cli(
    tmp_path: Path, cli_args: list[str], kwargs: dict[str, Any]
):
    config = tmp_path / "a.yaml"
    config.write_text("train: {lr: 0.1}\n")
    inputs = [] if "overrides" in kwargs else [str(config)]
    runs = tmp_path / "runs"
    printed = cli("compare", *inputs, "--runs-dir", str(runs), *cli_args)
    with pytest.raises(UsageError) as caught:
        api.compare(inputs, runs_dir=runs, **kwargs)
    assert printed.exit_code == 2, printed.output
    assert printed.stderr == f"Error: {caught.value}\n"
    assert not runs.exists()  # checked before anything is trained


def test_a_bad_train_input_is_one_message_from_the_api_and_the_cli(tmp_path: Path):
    printed = cli("train", "--runs-dir", str(tmp_path / "runs"), "--name", "a/b")
    with pytest.raises(UsageError) as caught:
        api.train(name="a/b", runs_dir=tmp_path / "runs")
    assert printed.exit_code == 2, printed.output
    assert printed.stderr == f"Error: {caught.value}\n"
    assert not (tmp_path / "runs").exists()


def test_train_name_is_the_cli_name_option(tiny: Path, tmp_path: Path):
    result = api.train(overrides=TINY, name="small", runs_dir=tmp_path, data_dir=tiny)
    assert result.run_dir.name.startswith("small-") and result.exit_code == 0
    assert not result.elsewhere
