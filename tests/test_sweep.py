"""Sweep expansion (table-driven) and execution on the tiny synthetic dataset, in process."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mnistexp.config.loading import load_config, parse_override
from mnistexp.core.errors import ConfigError
from mnistexp.orchestration import sweep as lib
from mnistexp.orchestration import workers
from mnistexp.store import runs
from tests.conftest import TINY
from tests.conftest import run_states as states

# --------------------------------------------------------------------------- expansion


def spec(**options) -> lib.SweepSpec:
    return lib.spec_from_options(**options)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({}, [()], id="nothing-is-one-run"),
        pytest.param(
            {"grids": ["train.lr=0.05,0.1"]},
            [(("train.lr", 0.05),), (("train.lr", 0.1),)],
            id="grid",
        ),
        pytest.param(
            {"grids": ["train.lr=0.05,0.1", "targets.scheme=onehot,soft"]},
            [
                (("train.lr", 0.05), ("targets.scheme", "onehot")),
                (("train.lr", 0.05), ("targets.scheme", "soft")),
                (("train.lr", 0.1), ("targets.scheme", "onehot")),
                (("train.lr", 0.1), ("targets.scheme", "soft")),
            ],
            id="grid-crossed",
        ),
        pytest.param(
            {"zips": ["loss.type=mse,cross_entropy", "loss.output=sigmoid,softmax"]},
            [
                (("loss.type", "mse"), ("loss.output", "sigmoid")),
                (("loss.type", "cross_entropy"), ("loss.output", "softmax")),
            ],
            id="zip",
        ),
        pytest.param(
            {"grids": ["train.lr=1,2"], "zips": ["a.b=x,y"]},
            [
                (("train.lr", 1), ("a.b", "x")),
                (("train.lr", 1), ("a.b", "y")),
                (("train.lr", 2), ("a.b", "x")),
                (("train.lr", 2), ("a.b", "y")),
            ],
            id="grid-times-zip",
        ),
        pytest.param(
            {"grids": ["model.hidden=[256,128],[100]"]},
            [(("model.hidden", [256, 128]),), (("model.hidden", [100]),)],
            id="list-values",
        ),
        pytest.param(
            {"grids": ["train.nesterov=true,false", "data.train_subset=null"]},
            [
                (("train.nesterov", True), ("data.train_subset", None)),
                (("train.nesterov", False), ("data.train_subset", None)),
            ],
            id="yaml-scalars",
        ),
    ],
)
def test_override_sets(options: dict, expected: list) -> None:
    assert lib.override_sets(spec(**options)) == expected


def test_explicit_runs_are_crossed_with_the_grid() -> None:
    s = lib.SweepSpec(
        runs=((("loss.type", "mse"),), (("loss.type", "bce"),)), grid=(("train.lr", (1, 2)),)
    )
    assert lib.override_sets(s) == [
        (("loss.type", "mse"), ("train.lr", 1)),
        (("loss.type", "mse"), ("train.lr", 2)),
        (("loss.type", "bce"), ("train.lr", 1)),
        (("loss.type", "bce"), ("train.lr", 2)),
    ]


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        pytest.param("0-4", (0, 1, 2, 3, 4), id="range-inclusive"),
        pytest.param("3-3", (3,), id="one-seed-as-range"),
        pytest.param("0,2,5", (0, 2, 5), id="list"),
        pytest.param("3", (3,), id="one-seed"),
        pytest.param("0", (0,), id="seed-zero"),
        pytest.param(" 7 ", (7,), id="spaces"),
        pytest.param([4, 1], (4, 1), id="yaml-list"),
    ],
)
def test_parse_seeds(text, seeds: tuple[int, ...]) -> None:
    assert lib.parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        pytest.param(
            "5",
            "s.yaml: seeds: 5 is a plain number, which no longer means the first N seeds; write "
            "seeds: 0-4 for the first 5 seeds (what it meant before), or seeds: [5] for seed 5 "
            "alone",
            id="int",
        ),
        pytest.param("'5'", "s.yaml: seeds: 5 is a plain number", id="quoted"),
        pytest.param(
            "0",
            "s.yaml: seeds: 0 is a plain number, which no longer means the first N seeds; write "
            "seeds: [0] for seed 0 alone",
            id="zero",
        ),
    ],
)
def test_a_plain_number_in_a_sweep_file_is_refused(tmp_path: Path, seeds: str, message) -> None:
    """It meant the first N seeds: a file written then must not silently train seed N."""
    path = tmp_path / "s.yaml"
    path.write_text(f"seeds: {seeds}\n")
    with pytest.raises(ConfigError) as caught:
        lib.load_sweep_file(path)
    assert str(caught.value).startswith(f"{tmp_path}/{message}")


@pytest.mark.parametrize(
    ("seeds", "expected"),
    [("0-4", (0, 1, 2, 3, 4)), ("[5]", (5,)), ("[0, 2]", (0, 2)), ("3,1", (3, 1))],
)
def test_a_sweep_file_names_seeds_as_a_range_or_a_list(tmp_path: Path, seeds: str, expected):
    path = tmp_path / "s.yaml"
    path.write_text(f"seeds: {seeds}\n")
    assert lib.load_sweep_file(path).seeds == expected


@pytest.mark.parametrize(
    ("text", "note"),
    [
        (
            "3",
            "note: --seeds 3 is seed 3 alone (a plain number no longer means the first N "
            "seeds); for seeds 0 to 2 give --seeds 0-2",
        ),
        (
            "1",
            "note: --seeds 1 is seed 1 alone (a plain number no longer means the first N "
            "seeds); for seed 0 give --seeds 0",
        ),
        ("0", None),
        ("0-2", None),
        ("1,2", None),
    ],
)
def test_a_plain_number_on_the_command_line_gets_a_note(text: str, note) -> None:
    assert lib.plain_number_note(text) == note


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"seeds": "4-2"},
            "seeds '4-2': a range is A-B with 0 <= A <= B, e.g. 0-4",
            id="backwards-range",
        ),
        pytest.param(
            {"seeds": "a"}, "seeds 'a': expected N (one seed), A-B or A,B,C", id="not-a-number"
        ),
        pytest.param(
            {"seeds": "0-10000"}, "seeds '0-10000': at most 10000 seeds", id="too-many-seeds"
        ),
        pytest.param({"seeds": "1,1"}, "seeds '1,1': a seed is listed twice", id="repeated"),
        pytest.param(
            {"seeds": "1,-2"},
            "seeds '1,-2': a range is A-B with 0 <= A <= B, e.g. 0-4",
            id="negative",
        ),
        pytest.param(
            {"zips": ["a=1,2", "b=x"]},
            "--zip lists must have the same length: a has 2, b has 1",
            id="zip-lengths",
        ),
        pytest.param(
            {"grids": ["train.lr"]},
            "--grid 'train.lr': expected key.path=value1,value2,...",
            id="no-values",
        ),
        pytest.param(
            {"grids": ["a=1", "a=2"]},
            "a is swept twice (in --grid/--zip); give it once",
            id="swept-twice",
        ),
        # invalid runs are reported before anything trains, named by their override set
        pytest.param(
            {"grids": ["train.lrr=0.1,0.2"]},
            "invalid run [train.lrr=0.1]: unknown key train.lrr; did you mean train.lr?",
            id="unknown-key",
        ),
        pytest.param(
            {"grids": ["loss.type=cross_entropy,bce"]},
            "invalid run [loss.type=bce]: loss.output = 'softmax' does not fit "
            "loss.type = 'bce': use loss.output = sigmoid",
            id="invalid-combination-names-its-override-set",
        ),
    ],
)
def test_expansion_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        lib.expand(spec(**options))
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "value",
    ["onehot", "0.05", 0.05, 1e-10, True, None, [256, 128], "yes", "1.0", "a b", ""],
)
def test_rendered_overrides_read_back(value) -> None:
    assert parse_override(lib.render_override(("k", value))) == ("k", value)


def test_runs_keep_the_base_name_and_have_deterministic_ids(tmp_path: Path) -> None:
    base = tmp_path / "enc.yaml"
    base.write_text("train:\n  epochs: 1\n")
    s = spec(config=str(base), grids=["train.lr=0.05,0.1"], seeds="0-1")
    first, again = lib.expand(s), lib.expand(s)
    names = [runs.run_name(p.config) for p in first]
    assert names == [runs.run_name(p.config) for p in again]
    assert len(set(names)) == 4
    assert all(n.startswith("enc-") for n in names)
    assert [p.config.seed for p in first] == [0, 1, 0, 1]


def test_duplicate_runs_are_dropped() -> None:
    assert len(lib.expand(spec(grids=["train.lr=0.1,0.1"]))) == 1


def test_sweep_file(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.yaml").write_text("train:\n  epochs: 3\n")
    sweep_file = tmp_path / "configs" / "sweeps" / "s.yaml"
    sweep_file.parent.mkdir()
    sweep_file.write_text(
        "base: ../base.yaml\nset: {train.lr: 0.05}\ngrid: {targets.scheme: [onehot, soft]}\n"
        "runs:\n  - {model.hidden: [8]}\n  - {model.hidden: [16]}\nseeds: 0-1\n"
    )
    loaded = lib.load_sweep_file(sweep_file)
    assert loaded.base == str(tmp_path / "configs" / "base.yaml")
    planned = lib.expand(loaded)
    assert len(planned) == 8
    assert {p.config.model.hidden for p in planned} == {(8,), (16,)}
    assert all(p.config.train.lr == 0.05 and p.config.name == "base" for p in planned)


def test_sweep_file_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("grids: {train.lr: [1]}\n")
    with pytest.raises(ConfigError, match=r"unknown sweep key grids; use base, set, grid"):
        lib.load_sweep_file(path)


def test_shipped_sweep_file_expands() -> None:
    planned = lib.expand(lib.load_sweep_file("configs/sweeps/encodings.yaml"))
    assert len(planned) >= 6
    assert len({p.config.name for p in planned}) == 1


# --------------------------------------------------------------------------- execution


def tiny_configs(tiny: Path, *, grid: str = "train.lr=0.05,0.1", seeds: str = "0-1", zips=()):
    s = spec(sets=[*TINY, f"data.dir={tiny}"], grids=[grid], zips=zips, seeds=seeds)
    return [p.config for p in lib.expand(s)]


BLOW_UP = ["data.scaling=raw", "train.lr=10", "loss.type=mse", "loss.output=linear"]
"""Overrides that make the tiny run diverge in its first epoch."""


def diverging_first(tiny: Path) -> list:
    """Two configs: the first diverges, the second trains."""
    good = ["data.scaling=unit", "train.lr=0.1", "loss.type=cross_entropy", "loss.output=softmax"]
    zips = [
        f"{b.split('=')[0]}={b.split('=')[1]},{g.split('=')[1]}"
        for b, g in zip(BLOW_UP, good, strict=True)
    ]
    return tiny_configs(tiny, grid="train.batch_size=20", seeds="1", zips=zips)


def test_execute_trains_then_skips(tiny: Path, tmp_path: Path) -> None:
    configs = tiny_configs(tiny)
    first = workers.execute(configs, runs_dir=tmp_path, progress=False)
    assert (first.done, first.skipped, first.exit_code) == (4, 0, 0)
    assert set(states(tmp_path).values()) == {"completed"}
    again = workers.execute(configs, runs_dir=tmp_path, progress=False)
    assert (again.done, again.skipped, again.exit_code) == (0, 4, 0)
    forced = workers.execute(configs[:1], runs_dir=tmp_path, force=True, progress=False)
    assert (forced.done, forced.skipped) == (1, 0)


def test_failed_runs_need_retry_failed(tiny: Path, tmp_path: Path) -> None:
    configs = diverging_first(tiny)[:1]
    first = workers.execute(configs, runs_dir=tmp_path, progress=False)
    assert (first.diverged, first.exit_code) == (1, 1)
    kept = workers.execute(configs, runs_dir=tmp_path, progress=False)
    assert (kept.outcomes[0].skipped, kept.exit_code) == (True, 1)
    retried = workers.execute(configs, runs_dir=tmp_path, retry_failed=True, progress=False)
    assert (retried.outcomes[0].skipped, retried.diverged) == (False, 1)


def test_a_running_run_with_a_dead_pid_is_interrupted_and_resumed(
    tiny: Path, tmp_path: Path
) -> None:
    import socket

    (cfg,) = tiny_configs(tiny, grid="train.lr=0.1", seeds="0")
    folder = tmp_path / runs.run_name(cfg)
    folder.mkdir(parents=True)
    dead = {"state": "running", "pid": 2**22 + 12345, "host": socket.gethostname()}
    (folder / "status.json").write_text(json.dumps(dead))
    assert runs.run_state(cfg, tmp_path) == "interrupted"
    summary = workers.execute([cfg], runs_dir=tmp_path, progress=False)
    assert (summary.done, states(tmp_path)) == (1, {folder.name: "completed"})


def test_a_run_another_live_process_trains_is_skipped(tiny: Path, tmp_path: Path) -> None:
    import os
    import socket

    (cfg,) = tiny_configs(tiny, grid="train.lr=0.1", seeds="0")
    folder = tmp_path / runs.run_name(cfg)
    folder.mkdir(parents=True)
    alive = {"state": "running", "pid": os.getpid(), "host": socket.gethostname()}
    (folder / "status.json").write_text(json.dumps(alive))
    summary = workers.execute([cfg], runs_dir=tmp_path, force=True, progress=False)
    assert (summary.skipped, summary.exit_code, summary.outcomes[0].state) == (1, 0, "running")


def test_fail_fast_stops_after_the_first_failure(tiny: Path, tmp_path: Path) -> None:
    configs = diverging_first(tiny)
    summary = workers.execute(configs, runs_dir=tmp_path, fail_fast=True, progress=False)
    assert (summary.diverged, summary.done, summary.not_run, summary.exit_code) == (1, 0, 1, 1)
    keep_going = workers.execute(configs, runs_dir=tmp_path, progress=False)
    assert (keep_going.diverged, keep_going.done) == (1, 1)


def test_configs_are_checked_against_the_data_before_training(tiny: Path, tmp_path: Path) -> None:
    configs = tiny_configs(tiny, grid="data.train_subset=100,100000", seeds="0")
    message = r"^invalid run default-\w+-s0: data.train_subset = 100000"
    with pytest.raises(ConfigError, match=message):
        workers.execute(configs, runs_dir=tmp_path, progress=False)
    assert not tmp_path.exists() or not list(runs.iter_run_folders(tmp_path))


@pytest.mark.slow  # real worker processes
def test_worker_processes_train_the_sweep(tiny: Path, tmp_path: Path) -> None:
    configs = tiny_configs(tiny)
    summary = workers.execute(configs, jobs=2, runs_dir=tmp_path, progress=False)
    assert (summary.done, summary.exit_code) == (4, 0)
    serial_dir = tmp_path / "serial"
    workers.execute(configs[:1], runs_dir=serial_dir, progress=False)
    name = runs.run_name(configs[0])
    same = [
        json.loads((d / name / "metrics.json").read_text())["test"]["nll"]
        for d in (tmp_path, serial_dir)
    ]
    assert same[0] == pytest.approx(same[1], rel=1e-6)  # BLAS threads differ: 1 vs many


@pytest.mark.slow  # real worker processes
def test_two_concurrent_sweeps_train_every_run_once(tiny: Path, tmp_path: Path) -> None:
    configs = tiny_configs(tiny, seeds="0-2")
    summaries: list[workers.Summary] = []

    def sweep() -> None:
        summaries.append(workers.execute(configs, runs_dir=tmp_path, progress=False))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s.exit_code for s in summaries] == [0, 0]
    assert sum(s.done for s in summaries) == len(configs)
    assert sum(s.skipped for s in summaries) == len(configs)
    assert set(states(tmp_path).values()) == {"completed"}


def test_load_config_and_emitted_commands_agree(tmp_path: Path) -> None:
    planned = lib.expand(
        spec(
            config="configs/baseline.yaml",
            grids=["model.hidden=[32,16],[8]", "targets.scheme=onehot,soft"],
        )
    )
    for run, command in zip(
        planned, lib.emit_commands(planned, "configs/baseline.yaml", tmp_path), strict=True
    ):
        import shlex

        words = shlex.split(command)
        sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        seed = int(words[words.index("--seed") + 1])
        again = load_config("configs/baseline.yaml", [*sets, f"seed={seed}"])
        assert runs.run_name(again) == runs.run_name(run.config)
