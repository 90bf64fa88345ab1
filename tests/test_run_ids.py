"""Run ids, once written, never change: the ids of every shipped config and study are pinned.

tests/golden/run_ids.json holds the folder name of every run that the shipped configs
(``configs/*.yaml``) and sweep files (``configs/sweeps``, ``configs/studies``) expand to, as
written by the version that recorded them. An upgrade that renames any of them would retrain
every finished run of a user's study, so this test fails instead.

A study with a ``teacher.yaml`` beside its ``sweep.yaml`` is expanded as its make target runs
it: with ``--set targets.teacher=<the teacher's folder>``. A distilled run's identity holds
its teacher's identity (config hash and seed), not the folder, so a stand-in folder that
records the teacher's real config and hash gives the ids the real study writes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from mnistexp.config.identity import config_hash
from mnistexp.config.loading import load_config, to_yaml
from mnistexp.orchestration.sweep import SweepSpec, expand, load_sweep_file
from mnistexp.store import runs

CONFIGS = Path(__file__).parent.parent / "configs"
GOLDEN = Path(__file__).parent / "golden" / "run_ids.json"

pytestmark = pytest.mark.slow  # expands every shipped sweep: about a minute


def current_ids() -> dict[str, list[str]]:
    """Shipped file (relative to configs/) -> the run ids it stands for, in order."""
    out = {f.name: [runs.run_name(load_config(f))] for f in sorted(CONFIGS.glob("*.yaml"))}
    with tempfile.TemporaryDirectory() as scratch:
        for f in sorted([*CONFIGS.glob("sweeps/*.yaml"), *CONFIGS.glob("studies/*/*.yaml")]):
            spec = load_sweep_file(f)
            if f.name == "sweep.yaml" and (f.parent / "teacher.yaml").exists():
                teacher = stand_in_teacher(f.parent / "teacher.yaml", Path(scratch))
                spec = spec.merged(SweepSpec(set=(("targets.teacher", str(teacher)),)))
            out[str(f.relative_to(CONFIGS))] = [runs.run_name(p.config) for p in expand(spec)]
    return out


def stand_in_teacher(teacher_sweep: Path, scratch: Path) -> Path:
    """A folder that reads as the finished run of ``teacher_sweep`` (one run): its resolved
    config and config hash, state completed; no model (nothing is trained here)."""
    (planned,) = expand(load_sweep_file(teacher_sweep))
    folder = scratch / runs.run_name(planned.config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(to_yaml(planned.config))
    status = {"state": "completed", "config_hash": config_hash(planned.config)}
    (folder / "status.json").write_text(json.dumps(status))
    return folder


def test_run_ids_of_shipped_configs_and_studies_are_pinned():
    got = current_ids()
    if os.environ.get("MNISTEXP_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n")
        pytest.skip("rewrote tests/golden/run_ids.json")
    recorded = json.loads(GOLDEN.read_text())
    assert sum(len(v) for v in recorded.values()) >= 346  # every study, not a sample
    assert got.keys() >= recorded.keys()
    for name, ids in recorded.items():
        assert got[name] == ids, name
