"""The Python API (``mnistexp.api``) against the command line it mirrors: the same run folders,
metrics, messages and text, on the tiny synthetic dataset and on synthetic run folders."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from test_compare import MSE, make_run, two_experiments

from mnistexp import api
from mnistexp.cli import main
from mnistexp.core.errors import ConfigError, DataError, UsageError
from tests.conftest import TINY

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def cli_error(result: Result) -> str:
    """The message of the CLI's one ``Error:`` line (exit code 2)."""
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error: ")]
    return line.removeprefix("Error: ")


def sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


# --------------------------------------------------------------------------- the package


def test_importing_the_package_stays_cheap_and_offers_the_api_lazily():
    code = (
        "import sys, mnistexp\n"
        "heavy = sorted(m for m in ('numpy', 'scipy', 'matplotlib', 'click', 'mnistexp.api')"
        " if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "from mnistexp import compare, train\n"
        "import mnistexp.api\n"
        "assert train is mnistexp.api.train and compare is mnistexp.api.compare\n"
        "assert mnistexp.RunResult is mnistexp.api.RunResult\n"
        "assert set(mnistexp.API) <= set(dir(mnistexp))\n"
        "try:\n"
        "    mnistexp.nothing\n"
        "except AttributeError as exc:\n"
        "    assert \"no attribute 'nothing'\" in str(exc)\n"
        "else:\n"
        "    raise AssertionError('mnistexp.nothing exists')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_every_public_function_has_an_example():
    for name in api.__all__:
        obj = getattr(api, name)
        assert obj.__doc__, name
        if callable(obj) and not isinstance(obj, type):
            assert "Example:" in obj.__doc__, name
    methods = [getattr(api.Comparison, m) for m in ("render", "to_records", "to_frame", "figures")]
    methods += [api.Runs.to_records, api.Runs.to_frame]
    for method in methods:
        assert "Example:" in (method.__doc__ or ""), method


# --------------------------------------------------------------------------- train


def test_train_writes_the_run_the_cli_writes(tiny: Path, tmp_path: Path):
    by_cli = cli("train", "--data-dir", str(tiny), "--runs-dir", str(tmp_path / "cli"),
                 "--no-progress", *sets(*TINY), "--seed", "2")  # fmt: skip
    assert by_cli.exit_code == 0, by_cli.output
    (cli_folder,) = (tmp_path / "cli").iterdir()
    result = api.train(overrides=TINY, seed=2, runs_dir=tmp_path / "api", data_dir=tiny)
    assert result.run_dir == tmp_path / "api" / cli_folder.name
    assert (result.state, result.skipped, result.message, result.ok) == (
        "completed", False, None, True,
    )  # fmt: skip
    assert result.seconds > 0
    assert result.metrics == json.loads((cli_folder / "metrics.json").read_text())
    for name in ("metrics.json", "predictions.npz", "model.npz", "config.yaml"):
        assert (result.run_dir / name).read_bytes() == (cli_folder / name).read_bytes(), name
    env = json.loads((result.run_dir / "env.json").read_text())
    assert env["command"] == ["mnistexp.api.train", *TINY]


def test_a_finished_run_is_reused_with_the_cli_message_and_force_retrains(
    tiny: Path, tmp_path: Path
):
    first = api.train(overrides=TINY, runs_dir=tmp_path, data_dir=tiny)
    again = api.train(overrides=TINY, runs_dir=tmp_path, data_dir=tiny)
    args = ["train", "--data-dir", str(tiny), "--runs-dir", str(tmp_path), *sets(*TINY)]
    printed = json.loads(cli(*args, "--json").stdout)
    assert (again.run_dir, again.state, again.skipped) == (first.run_dir, "completed", True)
    hint = "already completed; not retrained (--force retrains)"
    assert again.message == printed["message"] == hint
    assert again.metrics == first.metrics
    forced = api.train(overrides=TINY, runs_dir=tmp_path, data_dir=tiny, force=True)
    assert not forced.skipped and forced.metrics == first.metrics


def test_a_dict_config_is_the_file_with_the_same_settings(tiny: Path, tmp_path: Path):
    config = tmp_path / "small.yaml"
    config.write_text("name: small\nmodel: {hidden: [16]}\ntrain: {epochs: 2, batch_size: 20}\n")
    rest = ["data.dataset=tiny", "data.validation=100", "eval.bins=10"]
    from_file = api.train(config, overrides=rest, runs_dir=tmp_path / "a", data_dir=tiny)
    settings = {"name": "small", "model": {"hidden": [16]}, "train.epochs": 2,
                "train": {"batch_size": 20}}  # fmt: skip
    from_dict = api.train(settings, overrides=rest, runs_dir=tmp_path / "b", data_dir=tiny)
    assert from_dict.run_dir.name == from_file.run_dir.name
    assert from_dict.run_dir.name.startswith("small-")
    assert from_dict.metrics == from_file.metrics


ERRORS = [
    pytest.param(["--set", "train.lrr=0.1"], {"overrides": ["train.lrr=0.1"]}, ConfigError,
                 id="unknown-key"),
    pytest.param(sets("targets.scheme=smooth", "targets.epsilon=1.0"),
                 {"overrides": ["targets.scheme=smooth", "targets.epsilon=1.0"]}, ConfigError,
                 id="out-of-range"),
    pytest.param(sets("loss.output=sigmoid"), {"config": {"loss": {"output": "sigmoid"}}},
                 ConfigError, id="dict-config-combination"),
    pytest.param(["--set", "train..lr=1"], {"overrides": ["train..lr=1"]}, ConfigError,
                 id="bad-override"),
    pytest.param(["--set", "seed=-1"], {"seed": -1}, ConfigError,
                 id="negative-seed"),
    pytest.param(["--runs-dir", ""], {"runs_dir": ""}, UsageError, id="empty-runs-dir"),
    pytest.param(["--data-dir", "{missing}"], {"data_dir": "{missing}"}, DataError,
                 id="missing-data-folder"),
    pytest.param(["-c", "{bad_yaml}"], {"config": "{bad_yaml}"}, ConfigError, id="yaml-syntax"),
    pytest.param(["-c", "{missing}"], {"config": "{missing}"}, ConfigError, id="missing-file"),
]  # fmt: skip


@pytest.mark.parametrize(("cli_args", "kwargs", "kind"), ERRORS)
def test_bad_input_raises_the_cli_message_and_writes_nothing(
    tmp_path: Path, cli_args: list[str], kwargs: dict[str, Any], kind: type[Exception]
):
    (tmp_path / "bad.yaml").write_text("train:\n  lr: [0.1\n")
    names = {"missing": str(tmp_path / "nowhere"), "bad_yaml": str(tmp_path / "bad.yaml")}

    def fill(value: Any) -> Any:
        return value.format(**names) if isinstance(value, str) else value

    cli_args = [fill(a) for a in cli_args]
    kwargs = {k: fill(v) for k, v in kwargs.items()}
    runs = tmp_path / "runs"
    kwargs.setdefault("runs_dir", runs)
    message = cli_error(cli("train", "--runs-dir", str(runs), *cli_args))
    with pytest.raises(kind) as caught:
        api.train(**kwargs)
    assert str(caught.value) == message
    assert not runs.exists()


def test_a_config_of_another_type_is_one_line():
    expected = r"^config must be a YAML file, a dict or None, not list$"
    with pytest.raises(ConfigError, match=expected):
        api.train(["train.lr=0.1"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- compare


@pytest.fixture
def two(tmp_path: Path) -> Path:
    """Two experiments of 3 seeds, one diverged run, one damaged folder (test_compare's runs)."""
    root = two_experiments(tmp_path / "runs")
    make_run(root, "mse", 3, overrides=MSE, state="diverged")
    (make_run(root, "broken", 0) / "metrics.json").write_text("{")
    return root


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "csv", "json"])
def test_render_is_the_cli_output(two: Path, fmt: str):
    options = ["--baseline", "base", "--metrics", "accuracy,ece,nll", "--sort", "accuracy"]
    printed = cli("compare", "--runs-dir", str(two), *options, "--format", fmt)
    assert printed.exit_code == 0, printed.output
    result = api.compare(runs_dir=two, baseline="base", metrics=["accuracy", "ece", "nll"],
                         sort="accuracy")  # fmt: skip
    # the CLI's LaTeX also carries its provenance (command, date, commit) as % comments
    stdout = "".join(line for line in printed.stdout.splitlines(True) if not line.startswith("% "))
    assert result.render(fmt) == stdout
    assert [f"warning: {w}" for w in result.warnings] == printed.stderr.splitlines()


def test_inputs_filters_and_interval_match_the_cli(two: Path):
    args = [str(two / "base-*"), str(two / "mse-*")]
    printed = cli("compare", *args, "--filter", "seed=1", "--interval", "--format", "markdown")
    result = api.compare(args, filters=["seed=1"], interval=True)
    assert result.render("markdown") == printed.stdout
    assert api.compare(api.load_runs(args), filters=["seed=1"], interval=True).render() == (
        result.render()
    )


def test_config_files_train_then_compare_as_the_cli_does(tiny: Path, tmp_path: Path):
    configs = []
    for name, lr in (("narrow", 0.05), ("wide", 0.1)):  # TINY sets model.hidden: the lr differs
        configs.append(tmp_path / f"{name}.yaml")
        configs[-1].write_text(f"train: {{lr: {lr}}}\n")
    common = dict(seeds="0-1", overrides=TINY, runs_dir=tmp_path / "runs", data_dir=tiny)
    result = api.compare(configs, baseline="narrow", **common)  # trains the 4 runs
    assert [(e.name, e.seeds) for e in result.experiments] == [
        ("narrow", [0, 1]), ("wide", [0, 1]),
    ]  # fmt: skip
    printed = cli("compare", *map(str, configs), "--seeds", "0-1", *sets(*TINY), "--baseline",
                  "narrow", "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tiny),
                  "--format", "markdown")  # fmt: skip
    assert printed.exit_code == 0, printed.output
    assert result.render("markdown") == printed.stdout
    assert result._repr_markdown_() == printed.stdout


COMPARE_ERRORS = [
    pytest.param(["--baseline", "nope"], {"baseline": "nope"}, id="unknown-baseline"),
    pytest.param(["--metrics", "accuracy,eec"], {"metrics": "accuracy,eec"}, id="metric"),
    pytest.param(["--filter", "train.lrr=1"], {"filters": ["train.lrr=1"]}, id="filter-key"),
    pytest.param(["--filter", "train.lr=9"], {"filters": ["train.lr=9"]}, id="filter-empty"),
    pytest.param(["--sort", "speed"], {"sort": "speed"}, id="sort"),
    pytest.param(["--set", "train.lr=1"], {"overrides": ["train.lr=1"]}, id="set-without-config"),
    pytest.param(["--filter", "name=base", "--baseline", "base"],
                 {"filters": ["name=base"], "baseline": "base"}, id="nothing-to-compare"),
]  # fmt: skip


@pytest.mark.parametrize(("cli_args", "kwargs"), COMPARE_ERRORS)
def test_compare_errors_are_the_cli_messages(two: Path, cli_args: list[str], kwargs: dict):
    message = cli_error(cli("compare", "--runs-dir", str(two), *cli_args))
    with pytest.raises(UsageError) as caught:
        api.compare(runs_dir=two, **kwargs)
    assert str(caught.value) == message


def test_render_refuses_an_unknown_format(two: Path):
    with pytest.raises(UsageError, match=r"^format 'html': choose one of table, markdown"):
        api.compare(runs_dir=two).render("html")


def test_to_records_has_the_csv_columns_as_numbers(two: Path):
    result = api.compare(runs_dir=two, baseline="base")
    rows = result.to_records()
    table = list(csv.DictReader(io.StringIO(result.render("csv"))))
    assert len(rows) == len(table) == 2
    for row, line in zip(rows, table, strict=True):
        assert list(row) == list(line)  # the same columns in the same order
        assert row["seeds"] == [int(s) for s in line["seeds"].split()]
        for key, text in line.items():
            value = row[key]
            if isinstance(value, float):
                assert (math.isnan(value) and text == "") or float(text) == pytest.approx(value)
            elif key != "seeds":
                assert str(value) == text, key
    assert rows[0]["experiment"] == "base" and rows[0]["accuracy_test"] == "baseline"
    assert rows[1]["diverged"] == 1 and rows[1]["loss.type"] == "mse"
    assert rows[1]["accuracy_diff"] == pytest.approx((0.85 + 0.86 + 0.88 - 0.91 - 0.92 - 0.93) / 3)


def test_figures_are_figures_and_none_is_left_open(two: Path):
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    open_before = set(pyplot.get_fignums())  # other tests' figures are not this one's
    figures = api.compare(runs_dir=two).figures(curves=["val_accuracy"])
    assert list(figures) == [
        "reliability", "reliability_ts", "confidence", "learning_curves", "metrics", "curves",
    ]  # fmt: skip
    assert all(isinstance(f, Figure) for f in figures.values())
    assert set(pyplot.get_fignums()) == open_before
    buf = io.BytesIO()
    figures["reliability"].savefig(buf, format="png")  # still drawable after pyplot let go
    assert buf.getvalue().startswith(b"\x89PNG")
    with pytest.raises(UsageError, match="--curves 'speed': unknown column speed"):
        api.compare(runs_dir=two).figures(curves=["speed"])


# --------------------------------------------------------------------------- runs, frames


def test_load_runs_reads_what_compare_reads(two: Path):
    runs = api.load_runs(two)
    assert len(runs) == 7 and len(runs[1:3]) == 2  # 6 completed, 1 diverged; broken left out
    assert len(runs.warnings) == 2 and "broken" in runs.warnings[0]
    rows = runs.to_records()
    assert {r["state"] for r in rows} == {"completed", "diverged"}
    base = [r for r in rows if r["name"] == "base"]
    assert sorted(r["seed"] for r in base) == [0, 1, 2]
    assert {"run_dir", "config_hash", "accuracy", "ece", "train.lr", "loss.type"} <= set(rows[0])
    assert all(":" not in key for key in rows[0])
    assert repr(runs) == "<Runs: 7 runs, 2 warnings>"


def test_load_runs_errors_are_the_cli_messages(tmp_path: Path):
    message = cli_error(cli("compare", str(tmp_path / "nowhere")))
    with pytest.raises(UsageError) as caught:
        api.load_runs(tmp_path / "nowhere")
    assert str(caught.value) == message


def test_to_frame_with_pandas(two: Path):
    pandas = pytest.importorskip("pandas")
    frame = api.compare(runs_dir=two, baseline="base").to_frame()
    assert isinstance(frame, pandas.DataFrame)
    mse_mean = (0.85 + 0.86 + 0.88) / 3
    assert frame.shape[0] == 2 and frame.loc[1, "accuracy_mean"] == pytest.approx(mse_mean)
    runs = api.load_runs(two).to_frame()
    assert runs.shape[0] == 7
    assert runs.groupby("name")["accuracy"].count().to_dict() == {"base": 3, "mse": 3}


def test_to_frame_without_pandas_names_the_extra(two: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    for obj in (api.compare(runs_dir=two), api.load_runs(two)):
        with pytest.raises(ImportError) as caught:
            obj.to_frame()
        assert isinstance(caught.value, api.MissingExtra)
        assert "pip install 'mnistexp[pandas]'" in str(caught.value)
        assert obj.to_records()  # the rows without pandas
