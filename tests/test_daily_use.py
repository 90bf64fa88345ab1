"""Tests of the CLI for daily use (issue 19): readable labels, a table that fits 100 columns,
LaTeX, progress without a terminal, figures that are never empty and whose error bars stay
within the metric's bounds, and the small defects of the CLI.

Run folders are written by hand (``make_run`` of test_compare), so nothing trains except the
progress tests on the tiny synthetic dataset.
"""

from __future__ import annotations

import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import tiny_sets
from test_compare import MSE, make_run, report_of

from mnistexp.analysis import compare, plots
from mnistexp.analysis import report as rendering
from mnistexp.cli import compare as compare_cli
from mnistexp.cli import main
from mnistexp.core.states import State
from mnistexp.orchestration import workers
from mnistexp.orchestration.experiment import Outcome

SMOOTH = "targets.scheme=smooth"
EPSILONS = ("0.2", "0.05", "0.1", "0.0")  # written in hash-like, not numeric, order


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture
def smoothing(tmp_path: Path) -> Path:
    """Four label-smoothing experiments of one name (the shell loop of the README), 2 seeds."""
    root = tmp_path / "runs"
    for i, eps in enumerate(EPSILONS):
        for seed in (0, 1):
            overrides = (SMOOTH, f"targets.epsilon={eps}")
            make_run(root, "label_smoothing", seed, 0.9 + i / 100, overrides=overrides)
    return root


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """Four experiments configured like the four shipped configs, 3 seeds each."""
    root = tmp_path / "runs"
    configs = {
        "baseline": (),
        "label_smoothing": (SMOOTH, "targets.epsilon=0.1"),
        "mse_sigmoid": MSE,
        "soft_targets": ("targets.scheme=soft", "targets.low=0.01", "targets.high=0.99"),
    }
    for i, (name, overrides) in enumerate(configs.items()):
        for seed in range(3):
            accuracy = 0.95 - i / 100 + seed / 1000
            make_run(root, name, seed, accuracy, overrides=overrides, shift=i / 10 + seed / 100)
    make_run(root, "mse_sigmoid", 3, overrides=MSE, state="diverged")  # n: "3+1d"
    return root


# --------------------------------------------------------------------------- labels


def test_experiments_sharing_a_name_are_labelled_by_the_keys_that_differ(
    smoothing: Path,
) -> None:
    names = [e.name for e in report_of(smoothing).experiments]
    assert names == [  # numeric order of epsilon, not the order of hashes; one name: no name
        "epsilon=0.0",
        "epsilon=0.05",
        "epsilon=0.1",
        "epsilon=0.2",
    ]
    result = invoke("compare", "--runs-dir", str(smoothing))
    assert result.exit_code == 0, result.output
    rows = [line.split()[0] for line in result.stdout.splitlines()[3:7]]
    assert rows == names
    data = json.loads(invoke("compare", "--runs-dir", str(smoothing), "--format", "json").stdout)
    assert [e["name"] for e in data["experiments"]] == names
    assert {e["run_name"] for e in data["experiments"]} == {"label_smoothing"}


def test_labels_use_the_fewest_keys_and_fall_back_to_the_hash(tmp_path: Path) -> None:
    for lr in ("0.1", "0.05"):
        for hidden in ("[32]", "[16]"):
            make_run(tmp_path, "grid", 0, overrides=(f"train.lr={lr}", f"model.hidden={hidden}"))
    make_run(tmp_path, "grid", 0, overrides=("train.lr=0.1", "model.hidden=[8]", "eval.bins=10"))
    names = [e.name for e in report_of(tmp_path).experiments]
    assert names == [  # eval.bins differs too, but hidden and lr tell every row apart
        "hidden=[8], lr=0.1",
        "hidden=[16], lr=0.05",
        "hidden=[16], lr=0.1",
        "hidden=[32], lr=0.05",
        "hidden=[32], lr=0.1",
    ]
    only = [e.name for e in report_of(tmp_path, label_keys=["train.lr"]).experiments]
    assert only[0] == "lr=0.05@" + only[0].split("@")[1]  # not unique: the config hash


def test_labels_are_computed_over_the_rows_shown_and_name_first_where_names_differ(
    smoothing: Path,
) -> None:
    make_run(smoothing, "baseline", 0)
    make_run(smoothing, "baseline", 1)
    names = [e.name for e in report_of(smoothing).experiments]
    assert names[0] == "baseline" and names[1] == "label_smoothing, epsilon=0.0"
    kept = report_of(smoothing, filters=["targets.epsilon=0.05", "targets.scheme=smooth"])
    assert [e.name for e in kept.experiments] == ["label_smoothing"]
    result = invoke("compare", "--runs-dir", str(smoothing), "--label", "epsilon,scheme")
    assert "label_smoothing, epsilon=0.1, scheme=smooth" in result.stdout, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--label", "lr.typo"], "--label lr.typo: unknown key", id="unknown"),
        pytest.param(["--label", "gamma"], "--label gamma: ambiguous, give one of", id="ambiguous"),
    ],
)
def test_label_option_errors(smoothing: Path, args: list[str], message: str) -> None:
    assert_one_line_error(invoke("compare", "--runs-dir", str(smoothing), *args), message)


@pytest.mark.parametrize(
    ("baseline", "expected"),
    [
        pytest.param("epsilon=0.05", "epsilon=0.05", id="exact"),
        pytest.param("epsilon=0.2", "epsilon=0.2", id="prefix"),
        pytest.param("label_smoothing[targets.epsilon=0.05]", "epsilon=0.05", id="old-label"),
        pytest.param("label_smoothing[targets.epsilon=0.1", "epsilon=0.1", id="old-prefix"),
    ],
)
def test_baseline_takes_a_label_or_an_unambiguous_prefix(
    smoothing: Path, baseline: str, expected: str
) -> None:
    result = invoke("compare", "--runs-dir", str(smoothing), "--baseline", baseline)
    assert result.exit_code == 0, result.output
    assert f"Against the baseline '{expected}'" in result.stdout
    body = result.stdout.splitlines()[3]
    assert body.startswith(f"{expected} ")  # the baseline first


def test_an_ambiguous_baseline_prefix_names_the_candidates(smoothing: Path) -> None:
    result = invoke("compare", "--runs-dir", str(smoothing), "--baseline", "epsilon")
    assert_one_line_error(
        result,
        "--baseline epsilon: ambiguous, it starts 4 experiments",
        "epsilon=0.0; epsilon=0.05; epsilon=0.1; epsilon=0.2",
    )
    result = invoke("compare", "--runs-dir", str(smoothing), "--baseline", "label_smoothing[t"
                    "argets.epsilon=0.0")  # fmt: skip
    assert_one_line_error(result, "starts 2 experiments", "epsilon=0.0; epsilon=0.05")
    result = invoke("compare", "--runs-dir", str(smoothing), "--baseline", "nope")
    assert_one_line_error(result, "--baseline nope: no such experiment; choose from")


# --------------------------------------------------------------------------- width


def test_the_default_table_of_four_experiments_fits_100_columns(shipped: Path) -> None:
    for args in ([], ["--baseline", "baseline"]):
        result = invoke("compare", "--runs-dir", str(shipped), *args)
        assert result.exit_code == 0, result.output
        widths = [len(line) for line in result.stdout.splitlines()]
        assert max(widths) <= rendering.WIDTH == 100, result.stdout
    header, units = result.stdout.splitlines()[:2]
    assert header.split() == [
        "experiment",
        "n",
        "accuracy",
        "NLL",
        "Brier",
        "ECE",
        "TS",
        "ECE",
        "confidence",
    ]
    assert units.split() == ["(%)", "(nats)", "(%)", "(%)", "(%)"]
    assert "95.10±0.10" in result.stdout and "(±" not in result.stdout  # no interval
    assert "Config keys that differ:" in result.stdout
    assert " 3+1d " in result.stdout


def test_interval_is_an_option_and_always_in_the_machine_formats(shipped: Path) -> None:
    wide = invoke("compare", "--runs-dir", str(shipped), "--interval")
    assert wide.exit_code == 0 and "95.10±0.10 (±0.25)" in wide.stdout
    markdown = invoke("compare", "--runs-dir", str(shipped), "--format", "markdown")
    assert "95.10 ± 0.10 |" in markdown.stdout and "(±" not in markdown.stdout
    data = json.loads(invoke("compare", "--runs-dir", str(shipped), "--format", "json").stdout)
    accuracy = data["experiments"][0]["metrics"]["accuracy"]
    assert accuracy["ci95_high"] - accuracy["mean"] == pytest.approx(0.0024841, abs=1e-6)


# --------------------------------------------------------------------------- latex


def test_latex_is_a_booktabs_table_with_marks_and_caption(shipped: Path) -> None:
    result = invoke("compare", "--runs-dir", str(shipped), "--baseline", "baseline", "--format",
                    "latex")  # fmt: skip
    assert result.exit_code == 0, result.output
    comments = [line for line in result.stdout.splitlines() if line.startswith("% ")]
    assert comments[0].startswith("% made by mnistexp ") and comments[1].startswith("% on ")
    lines = [line for line in result.stdout.splitlines() if not line.startswith("% ")]
    split = lines.index("")  # the results, then (with --baseline) the differences
    lines, differences = lines[:split], lines[split + 1 :]
    assert lines[0] == r"\begin{table}[t]" and lines[-1] == r"\end{table}"
    assert r"\label{tab:compare-" in differences[4] and differences[4].endswith("-diff}")
    row = next(line for line in differences if line.startswith(r"\quad accuracy (pp) & $-2.00$"))
    assert row.endswith(r"& $<$0.001\rlap{$^{\dagger}$} \\")  # 3 seeds: low power
    order = [r"\toprule", r"\midrule", r"\bottomrule"]
    assert [line for line in lines if line in order] == order
    spec = re.search(r"\\begin\{tabular\}\{@\{\}([lr]+)@\{\}\}", result.stdout)
    assert spec is not None
    caption = next(line for line in lines if line.startswith(r"\caption{"))
    assert "differs from the baseline at $p < 0.05$ after Holm's correction" in caption
    assert r"$\pm$" in caption
    start, end = lines.index(r"\toprule") + 1, lines.index(r"\bottomrule")
    rows = [line for line in lines[start:end] if line != r"\midrule"]
    assert len(rows) == 6  # two header rows (names, units) and four experiments
    for row in rows:
        assert row.endswith(r" \\")
        assert row.count(" & ") + 1 == len(spec.group(1))  # as many cells as columns
    assert rows[2].startswith("baseline & ")
    assert rows[4].startswith(r"mse\_sigmoid & ")  # escaped underscore
    assert "accuracy" in rows[0] and r"(\%)" in rows[1] and "$n$" in rows[0]  # 3+1 diverged
    assert "$^{*}$" in rows[4]  # mse_sigmoid differs significantly
    assert "^{*}" not in rows[2]  # never on the baseline
    body = "\n".join(lines)  # the table; the % comments above it are not typeset
    assert "_" not in body.replace(r"\_", "")  # every underscore escaped


def test_latex_escapes_every_special_character() -> None:
    assert rendering.latex_escape("a_b&c%d$e#f{g}h~i^j\\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )
    assert rendering.latex_escape("p < 0.05 | a > b ± c") == r"p $<$ 0.05 $|$ a $>$ b $\pm$ c"


# --------------------------------------------------------------------------- progress


def test_sweep_prints_one_progress_line_per_run_without_a_terminal(
    tiny: Path, tmp_path: Path
) -> None:
    args = ["sweep", "--grid", "train.lr=0.05,0.1", "--seeds", "0", *tiny_sets(tiny)]
    result = invoke(*args, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("sweep ")]
    assert len(lines) == 2, result.stderr
    pattern = (
        r"sweep {k}/2: \S+-s0 completed in \d+\.\d s; done {k}, failed 0, skipped 0, "
        r"remaining {left}; elapsed \d+:\d\d, ETA \d+:\d\d"
    )
    for k, line in enumerate(lines, start=1):  # the counts include the run just finished
        assert re.fullmatch(pattern.format(k=k, left=2 - k), line), line
    quiet = invoke(*args, "--runs-dir", str(tmp_path / "quiet"), "--no-progress")
    assert quiet.exit_code == 0 and "sweep 1/2" not in quiet.stderr


def test_compare_training_missing_runs_shows_progress(tiny: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("name: c\n")
    args = ["compare", str(config), "--seeds", "0-1", *tiny_sets(tiny)]
    result = invoke(*args, "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("training ")]
    assert [line.split(":")[0] for line in lines] == ["training 1/2", "training 2/2"]
    assert "done 2, failed 0, skipped 0, remaining 0" in lines[1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_the_count_of_the_run_just_finished(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    screen = _Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with workers._Progress(4, skipped=0, enabled=True) as bar:
        time.sleep(0.6)  # past tqdm's mininterval, so the update draws
        bar.add(Outcome(tmp_path / "x-s0", State.COMPLETED, seconds=1.0))
        drawn = screen.getvalue().split("\r")[-1]
    assert "1/4" in drawn and "done 1" in drawn and "remaining 3" in drawn, drawn


def test_durations_read_as_clock_time() -> None:
    assert [workers.format_duration(s) for s in (7, 750, 3723)] == ["0:07", "12:30", "1:02:03"]


# --------------------------------------------------------------------------- figures


def test_a_figure_without_data_is_skipped_with_one_line(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed in (0, 1):
        (make_run(root, "a", seed) / "history.csv").write_text("epoch,val_accuracy\n1,\n")
    figs = tmp_path / "figs"
    result = invoke("compare", "--runs-dir", str(root), "--plot", str(figs))
    assert result.exit_code == 0, result.output
    assert "skipped learning_curves.png: no validation history" in result.stderr
    assert not (figs / "learning_curves.png").exists()
    assert (figs / "metrics.png").exists() and (figs / "reliability.png").exists()


@pytest.mark.slow  # every figure as a vector file
@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_plot_format_writes_vector_figures(shipped: Path, tmp_path: Path, fmt: str) -> None:
    figs = tmp_path / "figs"
    args = ["--runs-dir", str(shipped), "--plot", str(figs), "--plot-format", fmt]
    result = invoke("compare", *args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in figs.iterdir())
    assert names == sorted(
        f"{n}.{fmt}"
        for n in ("reliability", "reliability_ts", "confidence", "learning_curves", "metrics")
    )
    head = (figs / f"metrics.{fmt}").read_bytes()[:200]
    assert (b"<svg" in head or b"<?xml" in head) if fmt == "svg" else head.startswith(b"%PDF")


def test_unknown_plot_format_is_one_line(shipped: Path, tmp_path: Path) -> None:
    result = invoke("compare", "--runs-dir", str(shipped), "--plot", "x", "--plot-format", "gif")
    assert_one_line_error(result, "--plot-format", "gif")
    assert compare_cli.PLOT_FORMATS == plots.PLOT_FORMATS
    assert set(compare_cli.FORMATS) == set(rendering.RENDERERS)


def test_error_bars_of_bounded_metrics_stay_within_their_bounds(tmp_path: Path) -> None:
    for seed, ece in enumerate((0.002, 0.04)):  # two seeds: the t-interval reaches far below 0
        make_run(tmp_path, "a", seed, shift=(ece - 0.02) * 10)
    report = report_of(tmp_path, metrics=[compare.METRICS["ece"], compare.METRICS["accuracy"]])
    fig = plots.metrics_figure(report)
    plots.pyplot().close(fig)  # drawn, not shown: leave no figure open for other tests
    from matplotlib.container import ErrorbarContainer

    for ax in fig.axes:  # horizontal bars: the error bars run along x
        (container,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        segments = container.lines[2][0].get_segments()
        assert min(float(np.min(s[:, 0])) for s in segments) >= 0.0
        assert max(float(np.max(s[:, 0])) for s in segments) <= 100.0
    assert "clipped at the metric's bounds" in fig._suptitle.get_text().replace("\n", " ")


def test_clip_to_bounds() -> None:
    below, above, cut = plots.clip_to_bounds([1.0, 50.0], [3.0, 1.0], [2.0, 1.0], (0.0, 100.0))
    assert (below, above, cut) == ([1.0, 1.0], [2.0, 1.0], True)
    assert plots.clip_to_bounds([50.0], [1.0], [1.0], (0.0, 100.0))[2] is False


# --------------------------------------------------------------------------- small defects


def test_train_json_of_a_skipped_run_says_why(tiny: Path, tmp_path: Path) -> None:
    args = ["train", *tiny_sets(tiny), "--runs-dir", str(tmp_path), "--json"]
    assert invoke(*args).exit_code == 0
    again = json.loads(invoke(*args).stdout)
    assert again["skipped"] is True
    assert again["message"] == "already completed; not retrained (--force retrains)"


def test_the_interrupt_message_names_the_run_folder(tmp_path: Path) -> None:
    from mnistexp.cli.train import _interrupted_line
    from mnistexp.config.loading import load_config
    from mnistexp.store.runs import find_run

    cfg = load_config(None, ["name=x"])
    line = _interrupted_line(find_run(cfg, str(tmp_path)))  # the folder train was given
    assert line.startswith(f"{tmp_path}/x-") and "-s0: interrupted after 0 finished" in line


def test_print_config_is_block_yaml_with_the_run_folder(tmp_path: Path) -> None:
    result = invoke("train", "--set", "model.hidden=[64,32]", "--runs-dir", str(tmp_path),
                    "--print-config")  # fmt: skip
    assert result.exit_code == 0, result.output
    first, *rest = result.stdout.splitlines()
    assert re.fullmatch(rf"# run folder: {tmp_path}/config-[0-9a-f]{{8}}-s0", first) or (
        re.fullmatch(rf"# run folder: {tmp_path}/default-[0-9a-f]{{8}}-s0", first)
    ), first
    assert "  hidden:" in rest and "  - 64" in rest
    # block style: no flow list holding a value ([] is YAML's only way to write an empty one)
    assert re.search(r"\[[^\]]", result.stdout) is None, result.stdout


def test_retry_failed_help_matches_the_readme() -> None:
    text = " ".join(invoke("train", "--help").stdout.split())
    assert "Retrain a run that failed or diverged (interrupted runs are retrained anyway)" in text


def test_dry_run_shows_each_key_once(tmp_path: Path) -> None:
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("set: {train.epochs: 10}\ngrid: {train.lr: [0.1]}\nseeds: 0-0\n")
    result = invoke("sweep", str(sweep_file), "--set", "train.epochs=2", "--dry-run",
                    "--runs-dir", str(tmp_path / "runs"))  # fmt: skip
    assert result.exit_code == 0, result.output
    line = result.stdout.splitlines()[0]
    assert line.count("train.epochs=") == 1 and "train.epochs=2" in line, line


def test_data_verify_lines_up_the_checksums(capsys: pytest.CaptureFixture[str]) -> None:
    from mnistexp.cli.data import _report
    from mnistexp.data.datasets import FileReport

    names = ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    _report([FileReport(n, Path(n), True, "", "ab" * 32) for n in names])
    lines = capsys.readouterr().out.splitlines()
    assert [line.index("sha256") for line in lines[:2]] == [32, 32]
    assert lines[2] == "all 2 files verified"


def test_missing_data_says_how_to_use_a_local_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MNISTEXP_DATA_DIR", raising=False)
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(tmp_path / "empty-cache"))
    hint = "for a local copy, export MNISTEXP_DATA_DIR=/path/to/mnist (or pass --data-dir)"
    info = invoke("data", "info")  # information, exit 0: `make demo` goes on to download
    assert info.exit_code == 0 and info.stdout.splitlines()[-1].endswith(
        f"files missing; {hint}; otherwise run 'mnistexp data fetch'"
    )
    assert_one_line_error(invoke("data", "verify"), "not found in the cache", hint)


def test_setup_files() -> None:
    """The SPDX license string (no setuptools deprecation warnings on install) and study
    sweeps that show their progress under make."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    root = Path(__file__).parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert "--no-progress" not in (root / "Makefile").read_text()


def test_baseline_still_takes_the_name_at_hash_form(smoothing: Path) -> None:
    exp = next(e for e in report_of(smoothing).experiments if e.name == "epsilon=0.1")
    result = invoke("compare", "--runs-dir", str(smoothing), "--baseline",
                    f"label_smoothing@{exp.chash[:8]}")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Against the baseline 'epsilon=0.1'" in result.stdout
