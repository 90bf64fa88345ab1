"""Training many runs on one machine: local worker processes, skipping, interrupts.

:func:`execute` skips finished runs (run ids are deterministic, and a run finished under another
name is found by its identity: :func:`mnistexp.store.runs.find_run`), retrains interrupted ones (or,
with ``resume``, continues them from their checkpoints), claims each run folder atomically (so
concurrent sweeps over one runs folder train every run once), and trains in ``jobs`` spawned
worker processes, each with one BLAS thread. Used by ``mnistexp sweep`` and by ``compare``
when it trains missing runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistexp.config.identity import config_hash
from mnistexp.config.loading import ExperimentConfig, check_against_data
from mnistexp.core.errors import (
    PARENT_GONE_SIGNAL,
    ConfigError,
    ExitCode,
    UsageError,
    interrupt_exit_code,
    interrupt_reason,
)
from mnistexp.core.states import State
from mnistexp.learning.budget import check_fits
from mnistexp.store import runs

if TYPE_CHECKING:
    from mnistexp.orchestration.experiment import Outcome

BLAS_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def check_data(
    configs: Sequence[ExperimentConfig], data_dir: str | Path | None = None, progress: bool = True
) -> None:
    """Check every config against its dataset's size (finding or downloading it once, here)."""
    from mnistexp.data import datasets as data

    sizes: dict[tuple[str, str | None], tuple[int, int, int]] = {}
    for cfg in configs:
        where = (cfg.data.dataset, str(data_dir or cfg.data.dir or "") or None)
        if where not in sizes:
            folder = data.locate(where[0], where[1], progress=progress)
            _, files = data.describe(where[0], folder)
            roles = dict(zip(data.dataset_spec(where[0]).files, files, strict=True))
            n_train, n_test = roles["train_labels"].shape[0], roles["test_labels"].shape[0]
            sizes[where] = (n_train, n_train + n_test, math.prod(roles["train_images"].shape[1:]))
        n_train, n_images, n_inputs = sizes[where]
        try:
            check_against_data(cfg, n_train)
            check_fits(cfg, n_images, n_inputs, data.NUM_CLASSES)
        except ConfigError as exc:
            raise ConfigError(f"invalid run {runs.run_name(cfg)}: {exc}") from None


@dataclass
class Summary:
    """What a sweep did: one outcome per run it reached, counts, and the exit code."""

    outcomes: list[Outcome] = field(default_factory=list)
    not_run: int = 0  # left out by --fail-fast or Ctrl-C
    interrupted_by_user: bool = False
    interrupt_code: ExitCode = ExitCode.SIGINT  # SIGTERM when the sweep itself got SIGTERM
    seconds: float = 0.0

    def _count(self, state: State, skipped: bool | None = None) -> int:
        return sum(
            o.state == state and (skipped is None or o.skipped == skipped) for o in self.outcomes
        )

    @property
    def done(self) -> int:
        return self._count(State.COMPLETED, skipped=False)

    @property
    def skipped(self) -> int:
        return self._count(State.COMPLETED, skipped=True) + self._count(State.RUNNING)

    @property
    def failed(self) -> int:
        return self._count(State.FAILED)

    @property
    def diverged(self) -> int:
        return self._count(State.DIVERGED)

    @property
    def interrupted(self) -> int:
        return self._count(State.INTERRUPTED)

    @property
    def exit_code(self) -> ExitCode:
        """SIGINT or SIGTERM if interrupted (by which), else FAILED if a run failed or
        diverged, else OK."""
        if self.interrupted_by_user or self.interrupted:
            return self.interrupt_code
        return ExitCode.FAILED if self.failed or self.diverged else ExitCode.OK

    def line(self) -> str:
        """``6 runs: 4 done, 2 skipped, 0 failed, 0 diverged, 0 interrupted in 12.3 s``."""
        n = len(self.outcomes) + self.not_run
        rest = f", {self.not_run} not run" if self.not_run else ""
        return (
            f"{n} runs: {self.done} done, {self.skipped} skipped, {self.failed} failed, "
            f"{self.diverged} diverged, {self.interrupted} interrupted{rest} "
            f"in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class _Job:
    """Arguments of one run, picklable for a worker process."""

    index: int
    config: ExperimentConfig
    folder: Path  # runs.find_run's, when the sweep was planned
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
    desc: str = "sweep",
) -> Summary:
    """Train every config that is not finished yet, ``jobs`` at a time; see the module doc.

    Configs are checked against the data, and the runs folder by a test write, first (a
    :class:`UsageError` before anything trains). Bad input that a run meets before its folder
    is claimed (the folder cannot be created) stops the sweep with that UsageError, in this
    process and in workers alike: nothing was recorded, so it is no failed run. Runs already
    finished, or being trained by another live process, are skipped; keep-going
    unless ``fail_fast`` (then in-flight runs finish and nothing new starts). Ctrl-C (or SIGTERM
    to the workers) marks the runs in flight ``interrupted``; the next call retrains them, or
    continues them from their checkpoints with ``resume``. ``progress``: a bar on stderr when
    it is a terminal, else one line per finished run (``desc`` starts each).
    """
    start = time.time()
    check_data(configs, data_dir, progress=progress and sys.stderr.isatty())
    runs.check_runs_root(runs.runs_root(runs_dir))  # a bad runs folder: one line, not N failures
    summary = Summary()
    results: dict[int, Outcome] = {}
    todo = []
    names = runs.listing(runs.runs_root(runs_dir))  # listed once, not once per run
    for i, cfg in enumerate(_one_per_experiment(configs)):
        folder = runs.find_run(cfg, runs_dir, names)
        job = _Job(i, cfg, folder, _str(runs_dir), _str(data_dir), force, retry_failed, resume)
        if _wanted(job):
            todo.append(job)
        else:
            results[i] = _train(job)  # only reads the folder's status: a quick skip
    with _Progress(len(todo), skipped=len(results), enabled=progress, desc=desc) as bar:
        runner = _run_serial if jobs <= 1 or len(todo) <= 1 else _run_pool
        results.update(runner(todo, jobs, fail_fast, bar, summary))
    summary.outcomes = [results[i] for i in sorted(results)]
    summary.not_run = sum(job.index not in results for job in todo)
    summary.seconds = time.time() - start
    return summary


def _one_per_experiment(configs: Sequence[ExperimentConfig]) -> list[ExperimentConfig]:
    """The first config of each experiment (config hash and seed), whatever the names."""
    first: dict[tuple[str, int], ExperimentConfig] = {}
    for cfg in configs:
        first.setdefault((config_hash(cfg), cfg.seed), cfg)
    return list(first.values())


def _wanted(job: _Job) -> bool:
    status = runs.read_status(job.folder)
    state = status["state"] if status else None
    return runs.should_train(state, job.force, job.retry_failed)


def _str(path: str | Path | None) -> str | None:
    return str(path) if path is not None else None


def _stops(outcome: Outcome, fail_fast: bool) -> bool:
    return fail_fast and not outcome.skipped and outcome.state in (State.FAILED, State.DIVERGED)


def _run_serial(
    todo: list[_Job], jobs: int, fail_fast: bool, bar: _Progress, summary: Summary
) -> dict[int, Outcome]:
    """Train in this process, one run after the other, with one BLAS thread like a worker.

    Small batches run several times faster on one BLAS thread than on many (measured on MNIST
    with batch size 32), and -j 1 should time what one worker does.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _serial_loop(todo, fail_fast, bar, summary)


def _serial_loop(
    todo: list[_Job], fail_fast: bool, bar: _Progress, summary: Summary
) -> dict[int, Outcome]:
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


def _run_pool(
    todo: list[_Job], jobs: int, fail_fast: bool, bar: _Progress, summary: Summary
) -> dict[int, Outcome]:
    """Train in ``jobs`` spawned worker processes (one BLAS thread each)."""
    import multiprocessing

    from mnistexp.data import datasets as data

    registry = pickle.dumps(dict(data.DATASETS))  # tests and plugins may add datasets
    results: dict[int, Outcome] = {}
    executor = ProcessPoolExecutor(
        max_workers=jobs,
        initializer=_init_worker,
        initargs=(registry, os.getpid()),
        mp_context=multiprocessing.get_context("spawn"),
    )
    futures = {executor.submit(_work, job): job for job in todo}
    stopped: set[int] = set()
    try:
        _collect(futures, fail_fast, bar, results)
    except KeyboardInterrupt as exc:
        summary.interrupted_by_user = True
        summary.interrupt_code = interrupt_exit_code(exc)
        stopped = _stop_workers(executor, futures, results)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    results.update(_left_by(stopped, [job for job in todo if job.index not in results]))
    return results


def _collect(
    futures: dict[Future, _Job], fail_fast: bool, bar: _Progress, results: dict[int, Outcome]
) -> None:
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


def _stop_workers(
    executor: ProcessPoolExecutor, futures: dict[Future, _Job], results: dict[int, Outcome]
) -> set[int]:
    """Ctrl-C: cancel queued runs, SIGTERM the workers, wait for them to mark their runs;
    returns the workers' pids."""
    import multiprocessing

    for future in futures:
        future.cancel()
    pids = {child.pid for child in multiprocessing.active_children() if child.pid is not None}
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(KeyboardInterrupt):  # stopped another way: stop waiting
        wait(list(futures), timeout=30)
    for future, job in futures.items():
        if future.done() and not future.cancelled():
            outcome = _result(future, job)
            if outcome is not None:
                results[job.index] = outcome
    return pids


def _left_by(pids: set[int], jobs: list[_Job]) -> dict[int, Outcome]:
    """Runs without a reported outcome that one of the stopped workers ``pids`` was training
    (the wait for it ended first): their folders say how they ended, so the summary counts
    them as the folders do, not as never run."""
    from mnistexp.orchestration.experiment import Outcome

    found: dict[int, Outcome] = {}
    for job in jobs:
        path = job.folder
        status = runs.read_status(path) or {}
        if pids and status.get("pid") in pids:
            found[job.index] = Outcome(path, status["state"], message=status.get("error"))
    return found


def _result(future: Future, job: _Job) -> Outcome | None:
    """A worker's outcome; None if the run never started (cancelled, stopped, pool broken)."""
    if future.cancelled():
        return None
    try:
        return future.result()
    except BrokenProcessPool:
        return None
    except UsageError:  # found before the run's folder was claimed (the folder cannot be
        raise  # created, a data file went bad): nothing was recorded; stop, as -j 1 does
    except Exception as exc:  # a bug in a worker: record it, keep going
        from mnistexp.orchestration.experiment import Outcome

        path = job.folder
        return Outcome(path, State.FAILED, message=f"{type(exc).__name__}: {exc}")


def _train(job: _Job) -> Outcome:
    from mnistexp.orchestration.experiment import run_experiment

    return run_experiment(
        job.config,
        runs_dir=job.runs_dir,
        data_dir=job.data_dir,
        force=job.force,
        retry_failed=job.retry_failed,
        resume=job.resume,
        progress=False,
        argv=sys.argv,
    )


def _interrupted(job: _Job, exc: BaseException) -> Outcome:
    from mnistexp.orchestration.experiment import Outcome

    path = job.folder
    return Outcome(path, State.INTERRUPTED, message=interrupt_reason(exc))


# --------------------------------------------------------------------------- workers

_STATE = {"stopping": False, "busy": False, "orphaned": False, "parent": 0}
WORKER_STOPPED = "the sweep was stopped (Ctrl-C or SIGTERM)"
PARENT_GONE = "the sweep's parent process died"
PARENT_POLL_S = 0.5  # how often a worker checks that its parent is alive (the portable way)
ORPHAN_GRACE_S = 20.0  # then how long it may take to mark its run interrupted before it exits
PARENT_SIGNAL = PARENT_GONE_SIGNAL


def _init_worker(registry: bytes, parent: int) -> None:
    """Worker start: one BLAS thread, the parent's dataset registry, and signal handling.

    The thread variables are set before numpy loads (the registry is unpickled only after,
    since unpickling it imports numpy). Ctrl-C goes to the whole process group; workers
    ignore SIGINT and leave stopping to the parent, which sends SIGTERM: that interrupts the
    run in flight (marked ``interrupted``) and makes the worker refuse further runs. A worker
    whose parent dies (``kill -9`` of the sweep) marks its run interrupted and exits: see
    :func:`_watch_parent`.
    """
    for name in BLAS_ENV:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    from mnistexp.data import datasets as data

    threadpool_limits(1)  # in case numpy was loaded already
    data.DATASETS.update(pickle.loads(registry))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _watch_parent(parent)


def _watch_parent(parent: int) -> None:
    """Two ways to notice that the parent died, whichever comes first: on Linux the kernel
    sends :data:`PARENT_SIGNAL` the moment it does (``PR_SET_PDEATHSIG``); everywhere a
    daemon thread polls ``os.getppid()``, which changes when an orphan is re-parented, and
    sends the same signal. Its handler runs in the main thread, so a run in flight is
    interrupted (and marked so) like by Ctrl-C; if that takes longer than
    :data:`ORPHAN_GRACE_S`, the thread ends the process."""
    _STATE["parent"] = parent
    signal.signal(PARENT_SIGNAL, _on_parent_signal)
    _die_with_parent(PARENT_SIGNAL)
    threading.Thread(target=_poll_parent, args=(parent,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # died before we were watching
        os.kill(os.getpid(), PARENT_SIGNAL)


def _die_with_parent(signum: int) -> None:
    """Linux's ``prctl(PR_SET_PDEATHSIG, signum)`` through ctypes; nothing elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signum), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no libc to call: the polling thread still watches
        pass


def _poll_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), PARENT_SIGNAL)
    time.sleep(ORPHAN_GRACE_S)
    os._exit(ExitCode.SIGTERM)


def _on_parent_signal(signum: int, frame: Any) -> None:
    """The parent died: interrupt the run in flight (it is marked ``interrupted``, and
    :func:`_work` then exits), or exit at once when idle. (PR_SET_PDEATHSIG also fires when
    the parent's thread that started us ends; the parent is then still our parent: ignored.)"""
    if os.getppid() == _STATE["parent"] or _STATE["orphaned"]:
        return
    _STATE["orphaned"] = True
    _STATE["stopping"] = True
    if not _STATE["busy"]:
        os._exit(ExitCode.SIGTERM)
    raise KeyboardInterrupt(PARENT_GONE)


def _on_sigterm(signum: int, frame: Any) -> None:
    if os.getppid() != _STATE["parent"]:  # an orphan told to stop: stop for good
        _on_parent_signal(signum, frame)
        return
    first = not _STATE["stopping"]
    _STATE["stopping"] = True
    if first and _STATE["busy"]:
        raise KeyboardInterrupt(WORKER_STOPPED)


def _work(job: _Job) -> Outcome | None:
    """Run one job in a worker; None if the worker is stopping and the run never started.
    An orphaned worker exits once its run is marked: there is nobody to report to."""
    if _STATE["stopping"]:
        return None
    _STATE["busy"] = True
    try:
        return _train(job)
    except KeyboardInterrupt as exc:
        return _interrupted(job, exc)
    finally:
        _STATE["busy"] = False
        if _STATE["orphaned"]:
            os._exit(ExitCode.SIGTERM)


# --------------------------------------------------------------------------- progress


class _Progress:
    """Progress on stderr: on a terminal one bar (done / failed / skipped / remaining and the
    ETA); otherwise (a log file, ``make``, a batch job) one line per finished run with the same
    counts and the ETA, so long unattended work is never silent."""

    def __init__(
        self, total: int, skipped: int, enabled: bool, tty: bool | None = None, desc: str = "sweep"
    ) -> None:
        self.total = total  # runs to train: the ETA is about them
        self.enabled = enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.desc = desc
        self.counts = {"done": 0, "failed": 0, "skipped": skipped}
        self.left = total
        self.start = time.monotonic()
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled and self.tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total,
                desc=self.desc,
                unit="run",
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.5,
            )
            self._postfix()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def add(self, outcome: Outcome) -> None:
        """Count a finished run; the counts are updated before the bar or line shows them."""
        key = (
            "skipped"
            if outcome.skipped and outcome.state in (State.COMPLETED, State.RUNNING)
            else "done"
            if outcome.state == State.COMPLETED
            else "failed"
        )
        self.counts[key] += 1
        self.left -= 1
        if self.bar is not None:
            self._postfix()
            self.bar.update(1)
        elif self.enabled:
            print(self.line(outcome), file=sys.stderr, flush=True)

    def line(self, outcome: Outcome) -> str:
        """``sweep 3/8: baseline-c0b5a603-s0 completed in 7.2 s; done 3, failed 0,
        skipped 1, remaining 5; elapsed 0:21, ETA 0:35``."""
        finished = self.total - self.left
        took = f" in {outcome.seconds:.1f} s" if outcome.seconds else ""
        elapsed = time.monotonic() - self.start
        eta = format_duration(elapsed / finished * self.left) if finished else "?"
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        run = Path(outcome.run_dir).name
        return (
            f"{self.desc} {finished}/{self.total}: {run} {outcome.state}{took}; "
            f"{counts}, remaining {self.left}; elapsed {format_duration(elapsed)}, ETA {eta}"
        )

    def refresh(self) -> None:
        if self.bar is not None:
            self.bar.refresh()

    def _postfix(self) -> None:
        parts = [f"{k} {v}" for k, v in self.counts.items()] + [f"remaining {self.left}"]
        self.bar.set_postfix_str(", ".join(parts), refresh=False)


def format_duration(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``: minutes:seconds, with hours when there are any."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
