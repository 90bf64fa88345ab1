"""config.json: the JSON copy of config.yaml that runs write and compare reads (fast), while
folders written before it (config.yaml only) read as they always did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

from mnistexp.analysis import rundirs
from mnistexp.cli import main
from tests.conftest import tiny_sets


def train_tiny(tiny: Path, root: Path, *args: str) -> Path:
    command = ["train", *tiny_sets(tiny), "--runs-dir", str(root), "--json", *args]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.output)["run_dir"])


def test_a_run_writes_config_json_equal_to_its_config_yaml(tiny: Path, tmp_path: Path) -> None:
    folder = train_tiny(tiny, tmp_path / "runs")
    assert json.loads((folder / "config.json").read_text()) == yaml.safe_load(
        (folder / "config.yaml").read_text()
    )


def records(folders: list[Path]) -> list[tuple]:
    loaded, notes = rundirs.load_runs(folders)
    # the only note a tiny run gets: its validation split is separable, so the temperature
    # fit sits on its bound (issue 24); no config note, whichever file the config came from
    assert all("the temperature fit sits on the bound" in note for note in notes), notes
    return [(r.name, r.seed, r.chash, r.config, r.values) for r in loaded]


def test_compare_reads_the_same_records_from_json_and_from_yaml(tiny: Path, tmp_path: Path):
    """Seeds of one experiment share one validated config; each keeps its own seed."""
    root = tmp_path / "runs"
    folders = [train_tiny(tiny, root, "--seed", str(s)) for s in (0, 1)]
    old = tmp_path / "old"
    for folder in folders:  # the same runs as mnistexp wrote them before config.json
        shutil.copytree(folder, old / folder.name)
        (old / folder.name / "config.json").unlink()
    from_json = records(folders)
    assert [r[1] for r in from_json] == [0, 1] and from_json[0][2] == from_json[1][2]
    assert [r[3]["seed"] for r in from_json] == [0, 1]
    assert from_json == records(sorted(old.iterdir()))
