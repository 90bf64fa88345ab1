"""The bundled studies (configs/studies/) in miniature, and the ``--curves`` figure they use.

Each study's sweep files run on real MNIST with a tiny budget (a 500-image training subset,
one epoch, one or two seeds), then ``compare --format markdown`` must show one row per arm of
the study. This keeps the files valid as the config schema evolves; the full studies are run by
``make studies`` (see the README's Findings section), not here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from test_compare import make_run, report_of

from mnistexp.analysis import plots
from mnistexp.cli import main

STUDIES = Path(__file__).resolve().parent.parent / "configs" / "studies"
TINY_BUDGET = ("--set", "data.train_subset=500", "--set", "train.epochs=1", "--no-progress")
SMALL_VALIDATION = ("--set", "data.validation=1000")  # faster temperature scaling


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def rows(markdown: str) -> dict[str, str]:
    """Experiment name -> its ``n`` cell, from the first table of compare's markdown.

    Warning lines (stderr, e.g. about diverged runs) may come first in the CliRunner output.
    """
    start = markdown.index("| experiment |")
    table = markdown[start:].split("\n\n")[0].splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    at = header.index("n")
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    return {c[0]: c[at] for c in cells}


def run_study(
    files: list[str], seeds: str, runs_dir: Path, data_dir: Path, *compare_args: str
) -> dict[str, str]:
    for name in files:
        extra = () if name.startswith(("tutorial", "published")) else SMALL_VALIDATION
        result = cli(
            "sweep",
            str(STUDIES / name),
            "--seeds",
            seeds,
            "--runs-dir",
            str(runs_dir),
            "--data-dir",
            str(data_dir),
            *TINY_BUDGET,
            *extra,
        )
        assert result.exit_code in (0, 1), result.output  # 1: a run diverged, which is data
        assert re.search(r"\d+ runs: \d+ done", result.output), result.output
    result = cli("compare", "--runs-dir", str(runs_dir), "--format", "markdown", *compare_args)
    assert result.exit_code == 0, result.output
    return rows(result.output)


STUDY_CASES = [
    pytest.param(
        ["tutorial/sweep.yaml"],
        "0-0",
        ("--baseline", "plain"),
        {"plain": "1", "soft_targets": "1", "shifted_inputs": "1", "both_tricks": "1"},
        id="tutorial",
    ),
    pytest.param(
        ["label_smoothing/sweep.yaml"],
        "0-0",
        ("--baseline", "eps0", "--metrics", "accuracy,ece,ts_ece,nll,ts_nll"),
        {f"eps{e}": "1" for e in ("0", "0.01", "0.05", "0.1", "0.2", "0.3")},
        id="label_smoothing",
    ),
    pytest.param(
        ["scaling/sweep.yaml"],
        "0-0",
        ("--baseline", "unit"),
        dict.fromkeys(("unit", "tutorial", "standardize", "symmetric", "raw"), "1"),
        id="scaling",
    ),
    pytest.param(
        ["losses/final.yaml", "losses/large_init.yaml"],
        "0-1",
        ("--baseline", "ce_softmax", "--metrics", "accuracy,nll,ece"),
        dict.fromkeys(
            (
                "ce_softmax",
                "mse_sigmoid",
                "mse_softmax",
                "mse_linear",
                "bce_sigmoid",
                "ce_softmax_normal_init",
                "mse_sigmoid_normal_init",
                "bce_sigmoid_normal_init",
            ),
            "2",
        ),
        id="losses",
    ),
    pytest.param(
        ["seed002/sweep.yaml"],
        "0-0",
        ("--baseline", "plain", "--metrics", "accuracy,ece"),
        {
            (n if (r, o) == ("exact", "shuffled") else f"{r}_{o}_{n}"): "1"
            for r in ("exact", "tutorial", "rashid")
            for o in ("shuffled", "file_order")
            for n in ("plain", "soft_targets", "shifted_inputs", "both_tricks")
        },
        id="seed002",
    ),
    pytest.param(
        ["overconfident/search.yaml"],
        "0-0",
        ("--metrics", "accuracy,ece,ts_ece"),
        dict.fromkeys(("h100_n2000", "h100_n5000", "h256x2_n2000", "h256x2_n5000"), "1"),
        id="overconfident-search",
    ),
    pytest.param(
        ["published/sweep.yaml"],
        "0-0",
        (
            "--metrics",
            "accuracy",
        ),
        {"ce_800": "1", "mse_300": "1"},
        id="published",
    ),
]


@pytest.mark.mnist
@pytest.mark.parametrize(("files", "seeds", "compare_args", "expected"), STUDY_CASES)
def test_study_in_miniature(
    files: list[str],
    seeds: str,
    compare_args: tuple[str, ...],
    expected: dict[str, str],
    mnist_dir: Path,
    tmp_path: Path,
) -> None:
    found = run_study(files, seeds, tmp_path / "runs", mnist_dir, *compare_args)
    assert {k: v.split(" ")[0] for k, v in found.items()} == expected


@pytest.mark.mnist
def test_lr_grid_in_miniature(mnist_dir: Path, tmp_path: Path) -> None:
    """5 losses x 7 learning rates: one experiment per pair, each named after its loss."""
    found = run_study(
        ["losses/lr_grid.yaml"],
        "0-0",
        tmp_path / "runs",
        mnist_dir,
        "--metrics",
        "val_accuracy,accuracy",
        "--sort",
        "val_accuracy",
    )
    assert all(re.fullmatch(r"\w+, lr=[0-9.]+", name) for name in found), found
    names = sorted(name.split(",")[0] for name in found)  # labelled by the learning rate
    losses = ("bce_sigmoid", "ce_softmax", "mse_linear", "mse_sigmoid", "mse_softmax")
    assert names == sorted(loss for loss in losses for _ in range(7))
    assert all(n in ("1", "0 (+1 diverged)") for n in found.values()), found


def _grid_report(cells: dict[tuple[str, float], float]) -> str:
    """compare's JSON for (name, lr) -> mean validation accuracy (None: every run diverged)."""
    import json

    experiments = [
        {
            "name": f"{name}@{i:08x}",
            "config": {"train.lr": lr},
            "metrics": {"val_accuracy": {"mean": score}},
        }
        for i, ((name, lr), score) in enumerate(cells.items())
    ]
    return json.dumps({"experiments": experiments})


@pytest.mark.parametrize(
    ("final_rates", "code"), [({"a": 1.0, "b": 0.1}, 0), ({"a": 0.1, "b": 0.1}, 1)]
)
def test_pick_rates_checks_final_yaml_against_the_grid(tmp_path: Path, final_rates, code):
    import subprocess
    import sys

    final = tmp_path / "final.yaml"
    final.write_text(
        "runs:\n" + "".join(f"  - {{name: {n}, train.lr: {lr}}}\n" for n, lr in final_rates.items())
    )
    grid = _grid_report(
        {("a", 0.1): 0.95, ("a", 1.0): 0.97, ("a", 10.0): None, ("b", 0.1): 0.96, ("b", 1.0): 0.90}
    )
    script = STUDIES / "losses" / "pick_rates.py"
    done = subprocess.run(
        [sys.executable, str(script), str(final)], input=grid, text=True, capture_output=True
    )
    assert done.returncode == code, done.stderr
    assert "a            best lr 1 (validation accuracy 97.00%)" in done.stdout
    assert ("update it" in done.stderr) == bool(code)


# --------------------------------------------------------------------------- --curves


def _history(folder: Path, saturated: list[float]) -> None:
    lines = ["epoch,grad_true,saturated"]
    lines += [f"{e + 1},{0.1 / (e + 1)},{s}" for e, s in enumerate(saturated)]
    (folder / "history.csv").write_text("\n".join(lines) + "\n")


def test_curves_figure_draws_mean_over_seeds(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed, stuck in enumerate(([0.2, 0.1], [0.4, 0.3])):
        _history(make_run(root, "base", seed), stuck)
    (exp,) = report_of(root).experiments
    fig = plots.curves_figure([exp], ["grad_true", "saturated"])
    grad_ax, stuck_ax = fig.axes[:2]
    assert grad_ax.get_yscale() == "log" and stuck_ax.get_yscale() == "linear"
    np.testing.assert_allclose(stuck_ax.lines[0].get_ydata(), [30.0, 20.0])  # percent
    np.testing.assert_allclose(grad_ax.lines[0].get_ydata(), [0.1, 0.05])
    from matplotlib import pyplot

    pyplot.close(fig)


def test_parse_curves_rejects_unknown_columns() -> None:
    assert plots.parse_curves("grad_true, saturated") == ["grad_true", "saturated"]
    with pytest.raises(Exception, match="unknown column grad_ture; choose from train_loss"):
        plots.parse_curves("grad_ture")


def test_cli_curves_writes_curves_png(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed in (0, 1):
        _history(make_run(root, "base", seed), [0.1, 0.0])
    out = tmp_path / "figs"
    result = cli(
        "compare", "--runs-dir", str(root), "--plot", str(out), "--curves", "grad_true,saturated"
    )
    assert result.exit_code == 0, result.output
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--curves", "saturated"),
            "Error: --curves draws into the --plot folder; add --plot DIR",
            id="no-plot",
        ),
        pytest.param(
            ("--plot", "figs", "--curves", "nope"),
            "Error: --curves 'nope': unknown column nope; choose from",
            id="unknown",
        ),
    ],
)
def test_cli_curves_errors(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = cli("compare", "--runs-dir", str(tmp_path), *args)
    assert result.exit_code == 2
    assert result.output.startswith(message), result.output


@pytest.mark.mnist
def test_seed001_study_in_miniature(mnist_dir: Path, tmp_path: Path) -> None:
    """2 rules x 3 learning rates; true_class may diverge, which compare counts."""
    found = run_study(["seed001/sweep.yaml"], "0-0", tmp_path / "runs", mnist_dir)
    names = sorted(name.split(",")[0] for name in found)  # short labels: "<name>, lr=0.1"
    assert names == ["exact"] * 3 + ["true_class"] * 3
    assert all(n in ("1", "0 (+1 diverged)") for n in found.values()), found


@pytest.mark.mnist
@pytest.mark.parametrize(
    ("study", "baseline", "arms"),
    [
        (
            "seed000",
            "onehot_exact",
            {"onehot_exact", "onehot_clamped", "teacher_raw", "teacher_clamped", "teacher_hinton"},
        ),
        (
            "overconfident",
            "onehot",
            {
                *("onehot", "soft_0.01_0.99", "smooth_0.05", "smooth_0.1", "smooth_0.2"),
                *("focal_3", "focal_flsd53", "penalty_0.1", "bootstrap_soft"),
                *("bootstrap_hard", "self_distill", "mixup_0.2"),
            },
        ),
    ],
)
def test_teacher_studies_in_miniature(
    study: str, baseline: str, arms: set[str], mnist_dir: Path, tmp_path: Path
) -> None:
    """The teacher first, then the students with --set targets.teacher=<its folder>, as the
    make target does."""
    teachers = tmp_path / "teachers"
    result = cli(
        "sweep", str(STUDIES / study / "teacher.yaml"), "--runs-dir", str(teachers),
        "--data-dir", str(mnist_dir), *TINY_BUDGET, *SMALL_VALIDATION,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (teacher,) = teachers.glob("teacher-*-s100")
    result = cli(
        "sweep", str(STUDIES / study / "sweep.yaml"), "--seeds", "0-0", "--runs-dir",
        str(tmp_path / "runs"), "--data-dir", str(mnist_dir), *TINY_BUDGET, *SMALL_VALIDATION,
        "--set", f"targets.teacher={teacher}",
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output  # 1: a run diverged, which is data
    result = cli(
        "compare", "--runs-dir", str(tmp_path / "runs"), "--format", "markdown",
        "--baseline", baseline, "--metrics", "accuracy,ece,ts_ece",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    found = rows(result.output)
    assert set(found) == arms
    assert all(v.split(" ")[0] in ("1", "0") for v in found.values()), found
