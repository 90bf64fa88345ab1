"""Sweeps: expand grids, zips, explicit run lists and seeds into configs, then train them.

Expansion. A :class:`SweepSpec` comes from the command line (``--grid key=v1,v2`` crossed,
``--zip a=1,2 --zip b=x,y`` paired, ``--set`` for every run, ``--seeds``) or from a sweep file
(YAML keys ``base``, ``set``, ``grid``, ``zip``, ``runs``, ``seeds``). The runs are the product
of the grid's combinations, the zip's rows and the explicit ``runs`` (a missing part counts as
one empty override set), each repeated for every seed. Overrides apply in the order ``set``,
``runs`` entry, grid, zip, seed; values are YAML scalars or lists, parsed by
:func:`mnistexp.config.parse_override`. Every run keeps the base config's name: runs differ by
their config hash, so ``compare`` groups them by hash. Every config is built and validated
before anything trains; the first bad one is reported with its override set.

Seeds: ``"0-4"`` is the inclusive range 0..4, ``"0,2,5"`` a list, and a plain number ``N``
the first N seeds 0..N-1 (as ``compare --seeds N``); one seed k alone is ``"k-k"``.

Execution. :func:`execute` skips finished runs (run ids are deterministic), retrains
interrupted ones (or, with ``resume``, continues them from their checkpoints), claims each
run folder atomically (so concurrent sweeps over one runs folder train every run once), and
trains in ``jobs`` worker processes, each with one BLAS thread.
:func:`emit_commands` renders the same runs as self-contained ``mnistexp train`` commands.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import os
import pickle
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mnistexp import runs
from mnistexp.config import ExperimentConfig, check_against_data, load_config, parse_override
from mnistexp.errors import ConfigError, interrupt_exit_code, interrupt_reason
from mnistexp.yamlio import one_line, read_yaml_mapping

if TYPE_CHECKING:
    from mnistexp.experiment import Outcome

Override = tuple[str, Any]  # ("train.lr", 0.05)
SWEEP_KEYS = ("base", "set", "grid", "zip", "runs", "seeds")
MAX_SEEDS = 10_000
BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


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
        """``train.lr=0.05 targets.scheme=soft seed=1``, for messages."""
        return " ".join(render_override(o) for o in (*self.overrides, ("seed", self.config.seed)))


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


def parse_seeds(spec: str | int | Sequence[int]) -> tuple[int, ...]:
    """``"0-4"`` -> 0..4, ``"0,2,5"`` -> (0, 2, 5), ``3`` or ``"3"`` -> (0, 1, 2)."""
    if isinstance(spec, bool):
        raise ConfigError(f"seeds {spec!r}: expected N, A-B or A,B,C")
    if isinstance(spec, int):
        return _seed_count(spec, str(spec))
    if isinstance(spec, list | tuple):
        return _seed_list([str(s) for s in spec], str(list(spec)))
    text = str(spec).strip()
    if "-" in text:
        lo, _, hi = text.partition("-")
        if not (lo.strip().isdigit() and hi.strip().isdigit()) or int(lo) > int(hi):
            raise ConfigError(f"seeds {spec!r}: a range is A-B with 0 <= A <= B, e.g. 0-4")
        return _seed_count(int(hi) - int(lo) + 1, text, start=int(lo))
    if "," in text:
        return _seed_list(text.split(","), text)
    if not text.isdigit():
        raise ConfigError(f"seeds {spec!r}: expected N (seeds 0..N-1), A-B or A,B,C")
    return _seed_count(int(text), text)


def _seed_count(n: int, spec: str, start: int = 0) -> tuple[int, ...]:
    if n < 1:
        raise ConfigError(f"seeds {spec!r}: the number of seeds must be >= 1")
    if n > MAX_SEEDS:
        raise ConfigError(f"seeds {spec!r}: at most {MAX_SEEDS} seeds per sweep")
    return tuple(range(start, start + n))


def _seed_list(items: list[str], spec: str) -> tuple[int, ...]:
    if not items or not all(s.strip().isdigit() for s in items):
        raise ConfigError(f"seeds {spec!r}: a list holds seeds >= 0, e.g. 0,2,5")
    seeds = tuple(int(s) for s in items)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {spec!r}: a seed is listed twice")
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

    The file is read like a config (:func:`mnistexp.yamlio.read_yaml_mapping`: safe, bounded,
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
        key = one_line(str(unknown[0]))
        close = difflib.get_close_matches(key, SWEEP_KEYS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{where}: unknown sweep key {key}; use {', '.join(SWEEP_KEYS)}{hint}")
    for key in ("grid", "zip", "runs"):
        if key in raw and not raw[key]:
            example = "[{train.lr: 0.1}, ...]" if key == "runs" else "{train.lr: [0.05, 0.1]}"
            raise ConfigError(f"{where}: {key} is empty; give it entries, e.g. {key}: {example}"
                              f", or leave it out")
    if not isinstance(raw.get("runs") or [], list):
        raise ConfigError(f"{where}: runs: expected a list of mappings of key.path: value")
    base = raw.get("base")
    return SweepSpec(
        base=os.path.normpath(path.parent / str(base)) if base is not None else None,
        set=_overrides(raw.get("set") or {}, f"{where}: set"),
        grid=_value_lists(raw.get("grid") or {}, f"{where}: grid"),
        zip=_value_lists(raw.get("zip") or {}, f"{where}: zip"),
        runs=tuple(_overrides(r, f"{where}: runs[{i}]")
                   for i, r in enumerate(raw.get("runs") or [])),
        seeds=parse_seeds(raw["seeds"]) if raw.get("seeds") is not None else None,
    )


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
    grid = list(itertools.product(*[[(k, v) for v in vals] for k, vals in spec.grid]))
    zipped = list(zip(*[[(k, v) for v in vals] for k, vals in spec.zip], strict=True)) or [()]
    listed = list(spec.runs) or [()]
    return [(*r, *g, *z) for r in listed for g in grid for z in zipped]


def expand(spec: SweepSpec) -> list[PlannedRun]:
    """Every run of the sweep as a validated config; duplicates (same run id) are dropped.

    Raises one :class:`ConfigError` line naming the first invalid override set.
    """
    planned: dict[str, PlannedRun] = {}
    for specific in override_sets(spec):
        overrides = (*spec.set, *specific)
        for cfg in _configs(spec.base, overrides, spec.seeds):
            planned.setdefault(runs.run_name(cfg), PlannedRun(overrides, cfg))
    return list(planned.values())


def _configs(base: str | None, overrides: tuple[Override, ...],
             seeds: tuple[int, ...] | None) -> list[ExperimentConfig]:
    texts = [render_override(o) for o in overrides]
    try:
        if seeds is None:
            return [load_config(base, texts)]
        return [load_config(base, [*texts, f"seed={s}"]) for s in seeds]
    except ConfigError as exc:
        where = one_line(" ".join(texts)) or "(no overrides)"
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


def existing_state(cfg: ExperimentConfig, runs_dir: str | Path | None = None) -> str | None:
    """State of ``cfg``'s run folder (dead ``running`` reads as interrupted), None if absent."""
    status = runs.read_status(runs.run_dir(cfg, runs_dir))
    return status.get("state", "failed") if status else None


def plan_line(cfg: ExperimentConfig, state: str | None, train: bool) -> str:
    """One ``--dry-run`` line: what happens to the run and why."""
    if train:
        action = "train" if state is None else f"retrain ({state})"
    else:
        action = "skip (running elsewhere)" if state == "running" else f"skip ({state})"
    return f"{action:26} {runs.run_name(cfg)}"


def check_data(configs: Sequence[ExperimentConfig], data_dir: str | Path | None = None,
               progress: bool = True) -> None:
    """Check every config against its dataset's size (finding or downloading it once, here)."""
    from mnistexp import data

    sizes: dict[tuple[str, str | None], int] = {}
    for cfg in configs:
        where = (cfg.data.dataset, str(data_dir or cfg.data.dir or "") or None)
        if where not in sizes:
            folder = data.locate(where[0], where[1], progress=progress)
            _, files = data.describe(where[0], folder)
            roles = dict(zip(data.dataset_spec(where[0]).files, files, strict=True))
            sizes[where] = roles["train_labels"].shape[0]
        try:
            check_against_data(cfg, sizes[where])
        except ConfigError as exc:
            raise ConfigError(f"invalid run {runs.run_name(cfg)}: {exc}") from None


# --------------------------------------------------------------------------- execution


@dataclass
class Summary:
    """What a sweep did: one outcome per run it reached, counts, and the exit code."""

    outcomes: list[Outcome] = field(default_factory=list)
    not_run: int = 0  # left out by --fail-fast or Ctrl-C
    interrupted_by_user: bool = False
    interrupt_code: int = 130  # 143 when the sweep itself got SIGTERM
    seconds: float = 0.0

    def _count(self, state: str, skipped: bool | None = None) -> int:
        return sum(o.state == state and (skipped is None or o.skipped == skipped)
                   for o in self.outcomes)

    @property
    def done(self) -> int:
        return self._count("completed", skipped=False)

    @property
    def skipped(self) -> int:
        return self._count("completed", skipped=True) + self._count("running")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def diverged(self) -> int:
        return self._count("diverged")

    @property
    def interrupted(self) -> int:
        return self._count("interrupted")

    @property
    def exit_code(self) -> int:
        """130 interrupted (143 by SIGTERM), else 1 if any run failed or diverged, else 0."""
        if self.interrupted_by_user or self.interrupted:
            return self.interrupt_code
        return 1 if self.failed or self.diverged else 0

    def line(self) -> str:
        """``6 runs: 4 done, 2 skipped, 0 failed, 0 diverged, 0 interrupted in 12.3 s``."""
        n = len(self.outcomes) + self.not_run
        rest = f", {self.not_run} not run" if self.not_run else ""
        return (f"{n} runs: {self.done} done, {self.skipped} skipped, {self.failed} failed, "
                f"{self.diverged} diverged, {self.interrupted} interrupted{rest} "
                f"in {self.seconds:.1f} s")


@dataclass(frozen=True)
class _Job:
    """Arguments of one run, picklable for a worker process."""

    index: int
    config: ExperimentConfig
    runs_dir: str | None
    data_dir: str | None
    force: bool
    retry_failed: bool
    resume: bool = False


def execute(
    configs: list[ExperimentConfig],
    *,
    jobs: int = 1,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    force: bool = False,
    retry_failed: bool = False,
    resume: bool = False,
    fail_fast: bool = False,
    progress: bool = True,
) -> Summary:
    """Train every config that is not finished yet, ``jobs`` at a time; see the module doc.

    Configs are checked against the data first (a :class:`ConfigError` before anything trains).
    Runs already finished, or being trained by another live process, are skipped; keep-going
    unless ``fail_fast`` (then in-flight runs finish and nothing new starts). Ctrl-C (or SIGTERM
    to the workers) marks the runs in flight ``interrupted``; the next call retrains them, or
    continues them from their checkpoints with ``resume``.
    """
    start = time.time()
    check_data(configs, data_dir, progress=progress)
    summary = Summary()
    results: dict[int, Outcome] = {}
    todo = []
    for i, cfg in enumerate({runs.run_name(c): c for c in configs}.values()):
        job = _Job(i, cfg, _str(runs_dir), _str(data_dir), force, retry_failed, resume)
        if _wanted(job):
            todo.append(job)
        else:
            results[i] = _train(job)  # only reads the folder's status: a quick skip
    with _Progress(len(todo), skipped=len(results), enabled=progress) as bar:
        runner = _run_serial if jobs <= 1 or len(todo) <= 1 else _run_pool
        results.update(runner(todo, jobs, fail_fast, bar, summary))
    summary.outcomes = [results[i] for i in sorted(results)]
    summary.not_run = sum(job.index not in results for job in todo)
    summary.seconds = time.time() - start
    return summary


def _wanted(job: _Job) -> bool:
    return runs.should_train(existing_state(job.config, job.runs_dir), job.force, job.retry_failed)


def _str(path: str | Path | None) -> str | None:
    return str(path) if path is not None else None


def _stops(outcome: Outcome, fail_fast: bool) -> bool:
    return fail_fast and not outcome.skipped and outcome.state in ("failed", "diverged")


def _run_serial(todo: list[_Job], jobs: int, fail_fast: bool, bar: _Progress,
                summary: Summary) -> dict[int, Outcome]:
    """Train in this process, one run after the other, with one BLAS thread like a worker.

    Small batches run several times faster on one BLAS thread than on many (measured on MNIST
    with batch size 32), and -j 1 should time what one worker does.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _serial_loop(todo, fail_fast, bar, summary)


def _serial_loop(todo: list[_Job], fail_fast: bool, bar: _Progress,
                 summary: Summary) -> dict[int, Outcome]:
    results: dict[int, Outcome] = {}
    for job in todo:
        try:
            outcome = _train(job)
        except KeyboardInterrupt as exc:
            results[job.index] = _interrupted(job, exc)
            summary.interrupted_by_user = True
            summary.interrupt_code = interrupt_exit_code(exc)
            break
        results[job.index] = outcome
        bar.add(outcome)
        if _stops(outcome, fail_fast):
            break
    return results


def _run_pool(todo: list[_Job], jobs: int, fail_fast: bool, bar: _Progress,
              summary: Summary) -> dict[int, Outcome]:
    """Train in ``jobs`` spawned worker processes (one BLAS thread each)."""
    import multiprocessing

    from mnistexp import data

    registry = pickle.dumps(dict(data.DATASETS))  # tests and plugins may add datasets
    results: dict[int, Outcome] = {}
    executor = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                   initargs=(registry,),
                                   mp_context=multiprocessing.get_context("spawn"))
    futures = {executor.submit(_work, job): job for job in todo}
    try:
        _collect(futures, fail_fast, bar, results)
    except KeyboardInterrupt as exc:
        summary.interrupted_by_user = True
        summary.interrupt_code = interrupt_exit_code(exc)
        _stop_workers(executor, futures, results)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return results


def _collect(futures: dict[Future, _Job], fail_fast: bool, bar: _Progress,
             results: dict[int, Outcome]) -> None:
    """Gather outcomes as workers finish; on a failure with ``fail_fast`` cancel the rest."""
    pending = set(futures)
    while pending:
        finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
        bar.refresh()
        for future in finished:
            outcome = _result(future, futures[future])
            if outcome is None:
                continue
            results[futures[future].index] = outcome
            bar.add(outcome)
            if _stops(outcome, fail_fast):
                for other in pending:
                    other.cancel()


def _stop_workers(executor: ProcessPoolExecutor, futures: dict[Future, _Job],
                  results: dict[int, Outcome]) -> None:
    """Ctrl-C: cancel queued runs, SIGTERM the workers, wait for them to mark their runs."""
    import multiprocessing

    for future in futures:
        future.cancel()
    for child in multiprocessing.active_children():
        if child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: stop waiting
        wait(list(futures), timeout=30)
    for future, job in futures.items():
        if future.done() and not future.cancelled():
            outcome = _result(future, job)
            if outcome is not None:
                results[job.index] = outcome


def _result(future: Future, job: _Job) -> Outcome | None:
    """A worker's outcome; None if the run never started (cancelled, stopped, pool broken)."""
    if future.cancelled():
        return None
    try:
        return future.result()
    except BrokenProcessPool:
        return None
    except Exception as exc:  # a bug or bad input in a worker: record it, keep going
        from mnistexp.experiment import Outcome

        path = runs.run_dir(job.config, job.runs_dir)
        return Outcome(path, "failed", message=f"{type(exc).__name__}: {exc}")


def _train(job: _Job) -> Outcome:
    from mnistexp.experiment import run_experiment

    return run_experiment(job.config, runs_dir=job.runs_dir, data_dir=job.data_dir,
                          force=job.force, retry_failed=job.retry_failed, resume=job.resume,
                          progress=False, argv=sys.argv)


def _interrupted(job: _Job, exc: BaseException) -> Outcome:
    from mnistexp.experiment import Outcome

    path = runs.run_dir(job.config, job.runs_dir)
    return Outcome(path, "interrupted", message=interrupt_reason(exc))


# --------------------------------------------------------------------------- workers

_STATE = {"stopping": False, "busy": False}
WORKER_STOPPED = "the sweep was stopped (Ctrl-C or SIGTERM)"


def _init_worker(registry: bytes) -> None:
    """Worker start: one BLAS thread, the parent's dataset registry, and signal handling.

    The thread variables are set before numpy loads (the registry is unpickled only after,
    since unpickling it imports numpy). Ctrl-C goes to the whole process group; workers
    ignore SIGINT and leave stopping to the parent, which sends SIGTERM: that interrupts the
    run in flight (marked ``interrupted``) and makes the worker refuse further runs.
    """
    for name in BLAS_ENV:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    from mnistexp import data

    threadpool_limits(1)  # in case numpy was loaded already
    data.DATASETS.update(pickle.loads(registry))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    first = not _STATE["stopping"]
    _STATE["stopping"] = True
    if first and _STATE["busy"]:
        raise KeyboardInterrupt(WORKER_STOPPED)


def _work(job: _Job) -> Outcome | None:
    """Run one job in a worker; None if the worker is stopping and the run never started."""
    if _STATE["stopping"]:
        return None
    _STATE["busy"] = True
    try:
        return _train(job)
    except KeyboardInterrupt as exc:
        return _interrupted(job, exc)
    finally:
        _STATE["busy"] = False


# --------------------------------------------------------------------------- progress


class _Progress:
    """One overall progress line on stderr: done / failed / skipped / remaining and the ETA."""

    def __init__(self, total: int, skipped: int, enabled: bool) -> None:
        self.total = total  # runs to train: the ETA is about them
        self.enabled = enabled
        self.counts = {"done": 0, "failed": 0, "skipped": skipped}
        self.left = total
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc="sweep", unit="run", file=sys.stderr,
                            dynamic_ncols=True, mininterval=0.5)
            self._postfix()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def add(self, outcome: Outcome) -> None:
        key = ("skipped" if outcome.skipped and outcome.state in ("completed", "running")
               else "done" if outcome.state == "completed" else "failed")
        self.counts[key] += 1
        self.left -= 1
        if self.bar is not None:
            self.bar.update(1)
            self._postfix()

    def refresh(self) -> None:
        if self.bar is not None:
            self.bar.refresh()

    def _postfix(self) -> None:
        parts = [f"{k} {v}" for k, v in self.counts.items()] + [f"remaining {self.left}"]
        self.bar.set_postfix_str(", ".join(parts), refresh=False)


# --------------------------------------------------------------------------- emitting


def train_command(run: PlannedRun, base: str | None, runs_dir: str | Path,
                  data_dir: str | Path | None = None, flags: Sequence[str] = ()) -> str:
    """A self-contained, shell-quoted ``mnistexp train`` command for one run; ``flags``
    (``--resume``, ``--retry-failed``, ``--force``) are appended as given."""
    words = ["mnistexp", "train"]
    words += ["--config", str(base)] if base else []
    for item in run.overrides:
        words += ["--set", render_override(item)]
    words += ["--seed", str(run.config.seed), "--runs-dir", str(runs_dir)]
    words += ["--data-dir", str(data_dir)] if data_dir else []
    words += flags
    return " ".join(shlex.quote(w) for w in words)


def emit_commands(planned: Sequence[PlannedRun], base: str | None,
                  runs_dir: str | Path | None = None,
                  data_dir: str | Path | None = None, flags: Sequence[str] = ()) -> list[str]:
    """One command per run; pipe them to GNU parallel or list them for a Slurm array."""
    root = runs.runs_root(runs_dir)
    return [train_command(p, base, root, data_dir, flags) for p in planned]


def write_command_file(path: str | Path, commands: Sequence[str]) -> Path:
    """Write the command list (one per line) atomically; returns the absolute path."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    runs.write_atomic(path, "".join(c + "\n" for c in commands))
    return path


def slurm_snippet(command_file: str | Path, n: int, limit: int | None = None) -> str:
    """An ``sbatch --array`` command whose task k runs line k of ``command_file``."""
    script = f'sed -n "${{SLURM_ARRAY_TASK_ID}}p" {shlex.quote(str(command_file))} | bash'
    array = f"1-{n}" + (f"%{limit}" if limit else "")
    return (f"# {n} runs, one per line of {command_file}; resubmitting is safe\n"
            f"sbatch --array={array} --job-name=mnistexp-sweep --cpus-per-task=1 "
            f"--output=slurm-%A_%a.out --wrap {shlex.quote(script)}")
