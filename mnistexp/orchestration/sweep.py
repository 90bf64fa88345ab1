"""Sweeps: expand grids, zips, explicit run lists and seeds into configs.

Expansion. A :class:`SweepSpec` comes from the command line (``--grid key=v1,v2`` crossed, ``--zip
a=1,2 --zip b=x,y`` paired, ``--set`` for every run, ``--seeds``) or from a sweep file (YAML keys
``base``, ``set``, ``grid``, ``zip``, ``runs``, ``seeds``). The runs are the product of the grid's
combinations, the zip's rows and the explicit ``runs`` (a missing part counts as one empty override
set), each repeated for every seed. Overrides apply in the order ``set``, ``runs`` entry, grid, zip,
seed; values are YAML scalars or lists, parsed by :func:`mnistexp.config.loading.parse_override`.
Every run keeps the base config's name: runs differ by their config hash, so ``compare`` groups them
by hash. Runs of one experiment (config hash and seed) are one run, whatever their names: the first
is kept. Every config is built and validated before anything trains; the first bad one is reported
with its override set.

Seeds: ``"0-4"`` is the inclusive range 0..4, ``"0,2,5"`` a list, and on the command line a
plain number ``N`` the one seed N (as ``compare --seeds N``). A plain number used to mean the
first N seeds: in a sweep file it is refused (``seeds: 0-4`` or ``seeds: [5]`` say which).

Execution is :func:`mnistexp.orchestration.workers.execute` (local worker processes);
:func:`emit_commands` renders the same runs as self-contained ``mnistexp train`` commands for
GNU parallel or a Slurm job array.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import os
import shlex
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mnistexp.config.identity import config_hash, flatten
from mnistexp.config.loading import ExperimentConfig, load_config, parse_override
from mnistexp.core import atomic
from mnistexp.core.errors import ConfigError, UsageError
from mnistexp.core.limits import MAX_RUNS, MAX_SEEDS, ascii_digits
from mnistexp.core.states import State
from mnistexp.core.yamlio import clip, one_line, read_yaml_mapping
from mnistexp.store import runs

if TYPE_CHECKING:
    pass

Override = tuple[str, Any]  # ("train.lr", 0.05)
SWEEP_KEYS = ("base", "set", "grid", "zip", "runs", "seeds")


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep: a base config plus override sets; see the module docstring."""

    base: str | None = None
    set: tuple[Override, ...] = ()
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    zip: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    runs: tuple[tuple[Override, ...], ...] = ()
    seeds: tuple[int, ...] | None = None

    def merged(self, other: SweepSpec) -> SweepSpec:
        """``other`` (e.g. the command line) added to this spec (e.g. a sweep file)."""
        return SweepSpec(
            base=other.base or self.base,
            set=self.set + other.set,
            grid=self.grid + other.grid,
            zip=self.zip + other.zip,
            runs=self.runs + other.runs,
            seeds=other.seeds if other.seeds is not None else self.seeds,
        )


@dataclass(frozen=True)
class PlannedRun:
    """One expanded run: its overrides (``set`` and run-specific, seed apart) and its config."""

    overrides: tuple[Override, ...]
    config: ExperimentConfig

    @property
    def label(self) -> str:
        """``train.lr=0.05 targets.scheme=soft seed=1``, for messages: each key once, with
        the value that applies (a later override, e.g. the command line's ``--set``, wins)."""
        final = dict((*self.overrides, ("seed", self.config.seed)))
        return " ".join(render_override(item) for item in final.items())


# --------------------------------------------------------------------------- parsing


def parse_values(item: str, option: str = "--grid") -> tuple[str, tuple[Any, ...]]:
    """``"train.lr=0.05,0.1"`` -> ``("train.lr", (0.05, 0.1))``.

    The values are read as one YAML flow list, so lists nest: ``model.hidden=[256,128],[100]``.
    """
    key, sep, text = item.partition("=")
    if not sep or not key.strip() or not text.strip():
        raise ConfigError(f"{option} {item!r}: expected key.path=value1,value2,...")
    try:
        key, values = parse_override(f"{key}=[{text}]")
    except ConfigError:
        raise ConfigError(f"{option} {item!r}: the values are not a valid YAML list") from None
    return key, tuple(values)


def parse_seeds(spec: str | int | Sequence[int], *, in_file: bool = False) -> tuple[int, ...]:
    """``"0-4"`` -> 0..4 (inclusive), ``"0,2,5"`` -> (0, 2, 5), ``"3"`` -> (3,), the one seed 3,
    and a sweep file's YAML list ``[4, 1]`` -> (4, 1).

    A plain number used to mean the first N seeds. On the command line it is now the one seed
    N (the commands print a note saying so); in a sweep file (``in_file``) it is refused with
    both readings spelled out, since a file written for the old meaning must not silently
    train other seeds.
    """
    if isinstance(spec, bool):
        raise ConfigError(f"seeds {spec!r}: expected N (one seed), A-B or A,B,C")
    if isinstance(spec, list | tuple):
        return _seed_list([str(s) for s in spec], str(list(spec)))
    text = str(spec).strip()
    if "-" in text:
        lo, _, hi = text.partition("-")
        if not (_digits(lo) and _digits(hi)) or int(lo) > int(hi):
            raise ConfigError(f"seeds {spec!r}: a range is A-B with 0 <= A <= B, e.g. 0-4")
        return _seed_range(int(lo), int(hi), text)
    if "," in text:
        return _seed_list(text.split(","), text)
    if not _digits(text):
        raise ConfigError(f"seeds {spec!r}: expected N (one seed), A-B or A,B,C")
    if in_file or isinstance(spec, int):
        raise ConfigError(plain_number_in_file(int(text)))
    return (int(text),)


def plain_number_in_file(n: int) -> str:
    """Why a sweep file's ``seeds: N`` is refused, and the two ways to say what was meant."""
    earlier = f"seeds: 0-{n - 1} for the first {n} seeds (what it meant before), or " if n else ""
    return (
        f"seeds: {n} is a plain number, which no longer means the first N seeds; write "
        f"{earlier}seeds: [{n}] for seed {n} alone"
    )


def plain_number_note(text: str) -> str | None:
    """The note a command prints for ``--seeds N``: a plain number is now the one seed N
    (it meant the first N seeds); None for a range, a list or ``--seeds 0``."""
    text = text.strip()
    if not _digits(text) or int(text) == 0:
        return None
    n = int(text)
    earlier = (
        "for seed 0 give --seeds 0" if n == 1 else f"for seeds 0 to {n - 1} give --seeds 0-{n - 1}"
    )
    return (
        f"note: --seeds {n} is seed {n} alone (a plain number no longer means the first N "
        f"seeds); {earlier}"
    )


def _digits(text: str) -> bool:
    """ASCII digits 0-9 only (``str.isdigit`` also takes '²' and other scripts' digits)."""
    return ascii_digits(text)


def _seed_range(lo: int, hi: int, spec: str) -> tuple[int, ...]:
    if hi - lo + 1 > MAX_SEEDS:
        raise ConfigError(f"seeds {spec!r}: at most {MAX_SEEDS} seeds")
    return tuple(range(lo, hi + 1))


def _seed_list(items: list[str], spec: str) -> tuple[int, ...]:
    if not items or not all(_digits(s) for s in items):
        raise ConfigError(f"seeds {spec!r}: a list holds seeds >= 0, e.g. 0,2,5")
    seeds = tuple(int(s) for s in items)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {spec!r}: a seed is listed twice")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"seeds {spec!r}: at most {MAX_SEEDS} seeds")
    return seeds


def spec_from_options(
    config: str | None = None,
    sets: Sequence[str] = (),
    grids: Sequence[str] = (),
    zips: Sequence[str] = (),
    seeds: str | None = None,
) -> SweepSpec:
    """A spec from command-line strings (``--config``, ``--set``, ``--grid``, ``--zip``...)."""
    return SweepSpec(
        base=config,
        set=tuple(parse_override(s) for s in sets),
        grid=tuple(parse_values(g, "--grid") for g in grids),
        zip=tuple(parse_values(z, "--zip") for z in zips),
        seeds=parse_seeds(seeds) if seeds is not None else None,
    )


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read a sweep file; ``base`` is relative to the sweep file's folder.

    The file is read like a config (:func:`mnistexp.core.yamlio.read_yaml_mapping`: safe, bounded,
    duplicate keys refused); a ``grid``, ``zip`` or ``runs`` that is given but empty is an
    error rather than a sweep that silently shrinks to the base config.
    """
    path = Path(path)
    where = one_line(str(path))
    raw = read_yaml_mapping(path, "sweep", "'base: configs/baseline.yaml'")
    if not raw:  # "{}"
        raise ConfigError(f"{where}: empty sweep; give some of {', '.join(SWEEP_KEYS)}")
    unknown = sorted((k for k in raw if k not in SWEEP_KEYS), key=str)
    if unknown:
        key = clip(str(unknown[0]))
        close = difflib.get_close_matches(key, SWEEP_KEYS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{where}: unknown sweep key {key}; use {', '.join(SWEEP_KEYS)}{hint}")
    for key in ("grid", "zip", "runs"):
        if key in raw and not raw[key]:
            example = "[{train.lr: 0.1}, ...]" if key == "runs" else "{train.lr: [0.05, 0.1]}"
            raise ConfigError(
                f"{where}: {key} is empty; give it entries, e.g. {key}: {example}, or leave it out"
            )
    if not isinstance(raw.get("runs") or [], list):
        raise ConfigError(f"{where}: runs: expected a list of mappings of key.path: value")
    base = raw.get("base")
    return SweepSpec(
        base=os.path.normpath(path.parent / str(base)) if base is not None else None,
        set=_overrides(raw.get("set") or {}, f"{where}: set"),
        grid=_value_lists(raw.get("grid") or {}, f"{where}: grid"),
        zip=_value_lists(raw.get("zip") or {}, f"{where}: zip"),
        runs=tuple(
            _overrides(r, f"{where}: runs[{i}]") for i, r in enumerate(raw.get("runs") or [])
        ),
        seeds=_file_seeds(raw["seeds"], where) if raw.get("seeds") is not None else None,
    )


def _file_seeds(raw: Any, where: str) -> tuple[int, ...]:
    """A sweep file's ``seeds``: a range, a list (YAML or A,B,C), never a plain number."""
    try:
        return parse_seeds(raw, in_file=True)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _overrides(raw: Any, where: str) -> tuple[Override, ...]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of key.path: value")
    return tuple((str(k), v) for k, v in raw.items())


def _value_lists(raw: Any, where: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(raw, dict) or not all(isinstance(v, list) and v for v in raw.values()):
        raise ConfigError(f"{where}: expected key.path: [value1, value2, ...]")
    return tuple((str(k), tuple(v)) for k, v in raw.items())


# --------------------------------------------------------------------------- expansion


def override_sets(spec: SweepSpec) -> list[tuple[Override, ...]]:
    """The run-specific override sets, seeds apart: runs x grid x zip (each at least one set)."""
    keys = [k for k, _ in spec.grid] + [k for k, _ in spec.zip]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ConfigError(f"{repeated[0]} is swept twice (in --grid/--zip); give it once")
    lengths = {len(values) for _, values in spec.zip}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k} has {len(v)}" for k, v in spec.zip)
        raise ConfigError(f"--zip lists must have the same length: {sizes}")
    check_size(spec)
    grid = list(itertools.product(*[[(k, v) for v in vals] for k, vals in spec.grid]))
    zipped = list(zip(*[[(k, v) for v in vals] for k, vals in spec.zip], strict=True)) or [()]
    listed = list(spec.runs) or [()]
    return [(*r, *g, *z) for r in listed for g in grid for z in zipped]


def check_size(spec: SweepSpec) -> int:
    """The number of runs ``spec`` expands to, counted without expanding it; a ConfigError
    if it is more than :data:`MAX_RUNS` (before duplicates are dropped, so never fewer)."""
    sizes = [len(values) for _, values in spec.grid]
    sizes += [len(spec.zip[0][1])] if spec.zip else []
    sizes += [len(spec.runs)] if spec.runs else []
    sizes += [len(spec.seeds)] if spec.seeds is not None else []
    n = math.prod(sizes)
    if n > MAX_RUNS:
        product = " x ".join(str(size) for size in sizes)
        raise ConfigError(
            f"the sweep has {product} = {n:,} runs, more than {MAX_RUNS:,}; "
            "sweep fewer values or split it into several sweeps"
        )
    return n


def expand(spec: SweepSpec) -> list[PlannedRun]:
    """Every run of the sweep as a validated config; duplicates (the same experiment: config
    hash and seed, whatever the name) are dropped, the first kept.

    Raises one :class:`ConfigError` line naming the first invalid override set.
    """
    planned: dict[tuple[str, int], PlannedRun] = {}
    for specific in override_sets(spec):
        overrides = (*spec.set, *specific)
        for cfg in _configs(spec.base, overrides, spec.seeds):
            planned.setdefault((config_hash(cfg), cfg.seed), PlannedRun(overrides, cfg))
    return list(planned.values())


def _configs(
    base: str | None, overrides: tuple[Override, ...], seeds: tuple[int, ...] | None
) -> list[ExperimentConfig]:
    texts = [render_override(o) for o in overrides]
    try:
        if seeds is None:
            return [load_config(base, texts)]
        return [load_config(base, [*texts, f"seed={s}"]) for s in seeds]
    except ConfigError as exc:
        where = clip(" ".join(texts), 200) or "(no overrides)"
        raise ConfigError(f"invalid run [{where}]: {exc}") from None


def render_override(item: Override) -> str:
    """``("train.lr", 0.05)`` -> ``"train.lr=0.05"``, text that parse_override reads back."""
    key, value = item
    if isinstance(value, str) and _reads_back(value):
        return f"{key}={value}"
    if isinstance(value, float) and "e" in repr(value) and "." not in repr(value):
        mantissa, _, exponent = repr(value).partition("e")
        return f"{key}={mantissa}.0e{exponent}"  # YAML 1.1 reads 1e-10 as a string
    return f"{key}={json.dumps(value, separators=(',', ':'))}"  # JSON is YAML


def _reads_back(text: str) -> bool:
    try:
        return text.strip() == text and text != "" and yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


# --------------------------------------------------------------------------- planning


def plan_line(
    cfg: ExperimentConfig, state: str | None, train: bool, found: str | None = None
) -> str:
    """One ``--dry-run`` line: what happens to the run and why; ``found``: the folder of the
    same experiment under another name (:func:`mnistexp.store.runs.find_run`), if that is it."""
    where = f" as {found}" if found else ""
    if train:
        action = "train" if state is None else f"retrain ({state}{where})"
    elif state == State.RUNNING:
        action = f"skip (running elsewhere{where})"
    else:
        action = f"skip ({state}{where})"
    return f"{action:26} {runs.run_name(cfg)}"


# --------------------------------------------------------------------------- emitting


PATH_KEYS = ("data.dir", "targets.teacher")
"""Config keys whose values are paths: emitted commands name them absolutely."""
PATH_ENV = ("MNISTEXP_DATA_DIR", "MNISTEXP_CACHE_DIR")
"""Environment variables naming paths that a job inherits (``sbatch`` passes the environment
on): emitted commands set them again, absolutely, in front of ``mnistexp``."""
UNSAFE_CATEGORIES = ("Cc", "Zl", "Zp")
"""Control characters (newline, carriage return, NUL, escape, ...) and line separators: no
quoting keeps them inside one line of a command file, so a word holding one is refused."""


def shell_word(word: str, what: str) -> str:
    """``word`` quoted for the shell that runs an emitted command (``shlex.quote``).

    A command file is read line by line (GNU parallel, ``sed -n Kp`` in a Slurm task), so a
    quoted newline would split one command into two, the second running whatever followed
    the newline. A word with a control character is a one-line UsageError naming ``what``.
    """
    bad = next((c for c in word if unicodedata.category(c) in UNSAFE_CATEGORIES), None)
    if bad is not None:
        raise UsageError(
            f"{what} {word!r}: holds the control character {bad!r}, which an emitted command "
            "cannot carry on one line; use a path without it"
        )
    return shlex.quote(word)


def train_command(
    run: PlannedRun,
    base: str | None,
    runs_dir: str | Path,
    data_dir: str | Path | None = None,
    flags: Sequence[str] = (),
) -> str:
    """A self-contained, shell-quoted, one-line ``mnistexp train`` command for one run;
    ``flags`` (``--resume``, ``--retry-failed``, ``--force``) are appended as given. Every
    path in it (config, runs folder, data folder, path-valued keys of the resolved config,
    path environment variables) is absolute, so the command does the same from any working
    directory (a Slurm task, a GNU parallel job elsewhere)."""
    parts = [_assignment(name) for name in PATH_ENV if os.environ.get(name)]
    parts += ["mnistexp", "train"]
    parts += _option("--config", os.path.abspath(base)) if base else []
    for item in (*_plain_overrides(run), *_path_overrides(run)):
        parts += _option("--set", render_override(item))
    parts += _option("--seed", str(run.config.seed))
    parts += _option("--runs-dir", os.path.abspath(runs_dir))
    parts += _option("--data-dir", os.path.abspath(data_dir)) if data_dir else []
    return " ".join([*parts, *(shlex.quote(flag) for flag in flags)])


def _option(name: str, value: str) -> list[str]:
    return [name, shell_word(value, name)]


def _assignment(name: str) -> str:
    """``MNISTEXP_DATA_DIR=/abs/path``: the variable as this process reads it, absolute."""
    return f"{name}={shell_word(os.path.abspath(os.environ[name]), name)}"


def _plain_overrides(run: PlannedRun) -> list[Override]:
    return [(k, v) for k, v in run.overrides if k not in PATH_KEYS]


def _path_overrides(run: PlannedRun) -> list[Override]:
    """The path-valued keys of the resolved config, absolute: wherever they were set (a
    config file, a sweep file, ``--set``), relative paths mean the same as for ``sweep``. An
    override that clears one (``data.dir=null``) is passed on as given."""
    values = flatten(run.config.to_dict())
    given = dict(run.overrides)
    return [
        (key, os.path.abspath(values[key])) if values.get(key) else (key, given[key])
        for key in PATH_KEYS
        if values.get(key) or key in given
    ]


def emit_commands(
    planned: Sequence[PlannedRun],
    base: str | None,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    flags: Sequence[str] = (),
) -> list[str]:
    """One command per run; pipe them to GNU parallel or list them for a Slurm array."""
    root = runs.runs_root(runs_dir)
    return [train_command(p, base, root, data_dir, flags) for p in planned]


def write_command_file(path: str | Path, commands: Sequence[str]) -> Path:
    """Write the command list (one per line) atomically; returns the absolute path, which
    the sbatch line names (so it must be a word the shell can take: :func:`shell_word`)."""
    path = Path(path).absolute()
    shell_word(str(path), "--emit slurm-array FILE")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_file(path, "".join(c + "\n" for c in commands))
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror or exc})") from None
    return path


def slurm_snippet(command_file: str | Path, n: int, limit: int | None = None) -> str:
    """An ``sbatch --array`` command whose task k runs line k of ``command_file`` (an
    absolute path); each task's log goes beside it, wherever ``sbatch`` is run from."""
    quoted = shell_word(str(command_file), "--emit slurm-array FILE")
    script = f'sed -n "${{SLURM_ARRAY_TASK_ID}}p" {quoted} | bash'
    array = f"1-{n}" + (f"%{limit}" if limit else "")
    folder = str(Path(command_file).parent).replace("%", "%%")  # sbatch expands %j, %x...
    log = shell_word(f"{folder}/slurm-%A_%a.out", "the log path")
    return (
        f"# {n} runs, one per line of {command_file}; resubmitting is safe\n"
        f"sbatch --array={array} --job-name=mnistexp-sweep --cpus-per-task=1 "
        f"--output={log} --wrap {shlex.quote(script)}"
    )
