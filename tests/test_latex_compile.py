"""``compare --format latex`` compiles, and fits, in a minimal paper (issue 28).

Every variant is compiled by pdflatex inside an ``article`` with booktabs and nothing else:
the one-column table in a plain and in a two-column article (its ``\\columnwidth``), the
``table*`` of ``--latex-width text`` in a two-column article (its ``\\textwidth``). Any
``Overfull \\hbox`` (the table is wider than its space) or ``Undefined control sequence`` in
the log fails the test. pdflatex missing: skipped locally, a failure under CI (.ci/run installs
texlive-latex-base and texlive-latex-recommended).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import require_tool
from test_compare import MSE, make_run

from mnistexp.analysis import latex
from mnistexp.cli import compare as compare_cli
from mnistexp.cli import main

SHIPPED = {
    "baseline": (),
    "label_smoothing": ("targets.scheme=smooth", "targets.epsilon=0.1"),
    "mse_sigmoid": MSE,
    "soft_targets": ("targets.scheme=soft", "targets.low=0.01", "targets.high=0.99"),
}
COLUMN = r"\documentclass{article}"
TWO_COLUMN = r"\documentclass[twocolumn]{article}"


def shipped(root: Path, seeds: range) -> Path:
    """Four experiments configured like the four shipped configs, one epoch each."""
    for i, (name, overrides) in enumerate(SHIPPED.items()):
        for seed in seeds:
            accuracy = 0.95 - i / 100 + seed / 1000
            sets = ("train.epochs=1", "model.activation=relu", *overrides)
            make_run(root, name, seed, accuracy, overrides=sets, shift=i / 10 + seed / 100)
    return root


def sweep(root: Path) -> Path:
    """The runs of ``sweep --grid train.lr=0.05,0.1 --grid targets.scheme=onehot,soft,smooth``
    of one config: one name, six experiments, two seeds."""
    for i, (lr, scheme) in enumerate((a, b) for a in ("0.05", "0.1") for b in SCHEMES):
        for seed in (0, 1):
            sets = (f"train.lr={lr}", f"targets.scheme={scheme}")
            make_run(root, "baseline", seed, 0.9 + i / 100 + seed / 1000, overrides=sets)
    return root


SCHEMES = ("onehot", "soft", "smooth")


def latex_of(root: Path, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["compare", "--runs-dir", str(root), "--format", "latex", *args]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def compile_log(tex: str, preamble: str, folder: Path) -> str:
    """The pdflatex log of ``tex`` in a minimal document (booktabs only)."""
    pdflatex = require_tool("pdflatex", "compare --format latex is compiled to check it fits")
    folder.mkdir(parents=True, exist_ok=True)
    doc = f"{preamble}\n\\usepackage{{booktabs}}\n\\begin{{document}}\n{tex}\\end{{document}}\n"
    (folder / "paper.tex").write_text(doc)
    subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=folder,
        capture_output=True,
        timeout=120,
    )
    return (folder / "paper.log").read_text(errors="replace")


def assert_clean(log: str) -> None:
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)
    assert "Undefined control sequence" not in log
    assert "Output written on paper.pdf" in log, log[-2000:]


@pytest.mark.parametrize(
    ("args", "seeds", "preambles"),
    [
        pytest.param((), range(2), (COLUMN, TWO_COLUMN), id="default"),
        pytest.param(("--baseline", "baseline"), range(2), (COLUMN, TWO_COLUMN), id="baseline"),
        pytest.param(("--latex-width", "text"), range(2), (TWO_COLUMN,), id="text"),
        pytest.param(
            ("--latex-width", "text", "--baseline", "baseline"),
            range(3),
            (TWO_COLUMN,),
            id="text-baseline",
        ),
        pytest.param((), range(1), (COLUMN, TWO_COLUMN), id="one-seed"),
        pytest.param(
            ("--baseline", "baseline"), range(1), (COLUMN, TWO_COLUMN), id="one-seed-mcnemar"
        ),
    ],
)
def test_every_latex_variant_compiles_and_fits(
    tmp_path: Path, args: tuple[str, ...], seeds: range, preambles: tuple[str, ...]
) -> None:
    if args == ("--sweep",):  # long labels: scheme=onehot, lr=0.05 wrap in their column
        root, args = sweep(tmp_path / "runs"), ("--baseline", "scheme=onehot, lr=0.1")
    else:
        root = shipped(tmp_path / "runs", seeds)
    tex = latex_of(root, *args)
    for i, preamble in enumerate(preambles):
        assert_clean(compile_log(tex, preamble, tmp_path / f"tex{i}"))


def test_caption_reads_as_english_and_states_the_shared_settings(tmp_path: Path) -> None:
    tex = latex_of(shipped(tmp_path / "runs", range(2)), "--baseline", "baseline")
    caption = next(line for line in tex.splitlines() if line.startswith(r"\caption{"))
    assert "1 epoch" in caption and "hidden layers [100]" in caption and "seeds 0--1" in caption
    assert "$p < 0.05$ after Holm's correction over the 12 tests" in caption
    assert "paired t-test, 2 shared seeds" in caption
    assert " < " not in caption.replace("$p < 0.05$", "")  # no text-mode <: OT1 prints a ¡
    assert "(baseline)" not in tex and "baseline, the baseline" not in caption
    assert "differs from the baseline at $p < 0.05$" in caption
    rows = tex.split(r"\midrule")[1].splitlines()[1:5]
    assert [row.split(" & ")[0] for row in rows] == [
        "baseline",
        r"label\_smoothing",
        r"mse\_sigmoid",
        r"soft\_targets",
    ]
    assert rows[2].split(" & ")[1] == r"93.05(7)\rlap{$^{*}$}"  # 93.05 +- 0.07, significant
    assert rows[2].split(" & ")[2] == r"0.505(7)\rlap{$^{*}$}"  # NLL 0.5050 +- 0.0071


def test_labels_differ_between_tables_and_can_be_chosen(tmp_path: Path) -> None:
    root = shipped(tmp_path / "runs", range(2))
    labels = {
        re.search(r"\\label\{(.*)\}", latex_of(root, *args)).group(1)  # type: ignore[union-attr]
        for args in [(), ("--metrics", "accuracy"), ("--filter", "loss.type=mse")]
    }
    assert len(labels) == 3 and all(label.startswith("tab:compare-") for label in labels)
    assert r"\label{tab:main}" in latex_of(root, "--latex-label", "tab:main")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--latex-label", "tab main"],
            "Invalid value for --latex-label: use letters, digits",
            id="label",
        ),
        pytest.param(
            ["--latex-width", "text"],
            "--latex-width and --latex-label shape --format latex",
            id="no-latex",
        ),
    ],
)
def test_latex_options_errors(tmp_path: Path, args: list[str], message: str) -> None:
    root = shipped(tmp_path / "runs", range(1))
    fmt = ["--format", "latex"] if "--latex-label" in args else []
    result = CliRunner().invoke(main, ["compare", "--runs-dir", str(root), *fmt, *args])
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_cli_widths_are_the_renderers() -> None:
    assert compare_cli.LATEX_WIDTHS == latex.LATEX_WIDTHS
