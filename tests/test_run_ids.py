"""Run ids, once written, never change: the ids of every shipped config and study are pinned.

tests/golden/run_ids.json holds the folder name of every run that the shipped configs
(``configs/*.yaml``) and sweep files (``configs/sweeps``, ``configs/studies``) expand to, as
written by the version that recorded them. An upgrade that renames any of them would retrain
every finished run of a user's study, so this test fails instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mnistexp import runs
from mnistexp.config import load_config
from mnistexp.sweep import expand, load_sweep_file

CONFIGS = Path(__file__).parent.parent / "configs"
GOLDEN = Path(__file__).parent / "golden" / "run_ids.json"


def current_ids() -> dict[str, list[str]]:
    """Shipped file (relative to configs/) -> the run ids it stands for, in order."""
    out = {f.name: [runs.run_name(load_config(f))] for f in sorted(CONFIGS.glob("*.yaml"))}
    for f in sorted([*CONFIGS.glob("sweeps/*.yaml"), *CONFIGS.glob("studies/*/*.yaml")]):
        out[str(f.relative_to(CONFIGS))] = [
            runs.run_name(p.config) for p in expand(load_sweep_file(f))
        ]
    return out


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
