"""The layering is checked by import-linter (pyproject.toml's contracts, ``make lint``); these
tests show the contracts can fail, and that old flat import paths still lead somewhere."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mnistexp import _moved

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the package under ``root`` with the repository's contracts."""
    if not LINT_IMPORTS.exists():
        pytest.fail("lint-imports is missing: pip install -e '.[test]' installs import-linter")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package and its contracts, to plant bad imports in."""
    shutil.copytree(REPO / "mnistexp", tmp_path / "mnistexp",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def plant(path: Path, line: str) -> None:
    """Append a function whose body imports ``line``: imports inside functions count."""
    path.write_text(path.read_text() + f"\n\ndef _planted():\n    {line}\n")


def test_the_package_keeps_its_contracts():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_an_upward_import_inside_a_function_breaks_the_layers(copy: Path):
    assert lint_imports(copy).returncode == 0  # the copy itself is clean
    plant(copy / "mnistexp" / "core" / "states.py", "from mnistexp.cli import main  # noqa")
    done = lint_imports(copy)
    assert done.returncode == 1
    assert "mnistexp.core.states -> mnistexp.cli" in done.stdout


def test_independent_layers_may_not_import_each_other(copy: Path):
    plant(copy / "mnistexp" / "analysis" / "stats.py", "from mnistexp.orchestration import sweep")
    done = lint_imports(copy)
    assert done.returncode == 1
    assert "mnistexp.analysis.stats -> mnistexp.orchestration.sweep" in done.stdout


def test_a_cycle_between_sibling_modules_breaks_the_acyclic_contract(copy: Path):
    # metrics imports calibration; calibration importing metrics closes a cycle inside eval
    plant(copy / "mnistexp" / "eval" / "calibration.py", "from mnistexp.eval import metrics")
    done = lint_imports(copy)
    assert done.returncode == 1
    assert "no import cycle among the modules of any package BROKEN" in done.stdout


def test_a_module_outside_every_layer_breaks_the_exhaustive_layers(copy: Path):
    (copy / "mnistexp" / "stray.py").write_text('"""Belongs to no layer."""\n')
    done = lint_imports(copy)
    assert done.returncode == 1
    assert "mnistexp.stray" in done.stdout


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_an_old_flat_path_warns_and_gives_the_moved_module(old: str):
    sys.modules.pop(f"mnistexp.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"mnistexp.{old} moved to {_moved.MOVED[old]}"):
        module = importlib.import_module(f"mnistexp.{old}")
    assert module is importlib.import_module(_moved.MOVED[old])
    assert not (REPO / "mnistexp" / f"{old}.py").exists()  # the shim is the only old path


def test_from_mnistexp_import_an_old_name_works_too():
    sys.modules.pop("mnistexp.metrics", None)
    with pytest.warns(DeprecationWarning, match="mnistexp.eval.metrics"):
        from mnistexp.metrics import fit_temperature
    from mnistexp.eval.metrics import fit_temperature as moved

    assert fit_temperature is moved


def test_the_new_paths_import_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for new in _moved.MOVED.values():
            importlib.import_module(new)
        from mnistexp.config import config_hash, load_config  # noqa: F401
        from mnistexp.data import load, verify  # noqa: F401
