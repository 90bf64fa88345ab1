"""The run-folder contract: claiming, atomic writes, status, reading back.

``<root>/<name>-<hash8>-s<seed>/`` holds config.yaml, status.json, history.csv, metrics.json,
predictions.npz, model.npz and env.json. Only this module writes run folders.

Concurrency: a folder is claimed by an atomic ``mkdir``, so of two processes starting the same
run exactly one trains it. Re-running a failed run first renames the old folder aside (atomic:
only one process can move it), then claims afresh. Every file is written to a temporary name in
the folder and renamed into place, so readers never see half a file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistexp.config import ExperimentConfig, config_hash
from mnistexp.errors import RunError
from mnistexp.states import State

if TYPE_CHECKING:
    from mnistexp.checkpoints import Checkpoint

STATES = tuple(State)
FINISHED_BAD = (State.FAILED, State.DIVERGED, State.INTERRUPTED)
RESUMABLE = (State.INTERRUPTED, State.FAILED)  # states whose checkpoint --resume continues from
CHECKPOINT = "checkpoint.npz"
CHECKPOINT_FORMAT = 1


def runs_root(option: str | Path | None = None) -> Path:
    """``--runs-dir``, else ``MNISTEXP_RUNS_DIR``, else ``./runs``."""
    return Path(option or os.environ.get("MNISTEXP_RUNS_DIR") or "runs")


def run_id(name: str, chash: str, seed: int) -> str:
    """Deterministic folder name of a run: ``<name>-<hash8>-s<seed>``."""
    return f"{name}-{chash[:8]}-s{seed}"


def run_name(cfg: ExperimentConfig) -> str:
    """The folder name of ``cfg``'s run."""
    return run_id(cfg.name, config_hash(cfg), cfg.seed)


def run_dir(cfg: ExperimentConfig, runs_dir: str | Path | None = None) -> Path:
    """Where ``cfg``'s run lives: ``<runs root>/<name>-<hash8>-s<seed>``."""
    return runs_root(runs_dir) / run_name(cfg)


# --------------------------------------------------------------------------- atomic writes


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    payload = data.encode() if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise RunError(f"cannot write {path} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a quota, a vanished folder: the old file stays
        Path(tmp).unlink(missing_ok=True)
        raise RunError(f"cannot write {path} ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")


def write_npz(path: Path, arrays: dict[str, Any], compress: bool = True) -> None:
    import numpy as np

    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    write_atomic(path, buf.getvalue())


NPZ_ERRORS = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
"""What :func:`read_npz` raises for a missing, truncated or corrupt file."""


def read_npz(path: Path, keys: Sequence[str] | None = None) -> dict[str, Any]:
    """The arrays ``keys`` (default: all) of an .npz file, never unpickling anything; one of
    :data:`NPZ_ERRORS` if the file is unusable. The file is opened through our own handle,
    since ``np.load`` leaks its file when the zip directory is corrupt."""
    import numpy as np

    with path.open("rb") as handle:
        npz = np.load(handle, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with npz:
            return {key: npz[key] for key in (npz.files if keys is None else keys)}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
    write_atomic(path, buf.getvalue())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, so a file and the status that
    describes it are written together; a signal that arrives meanwhile is raised again at
    the end of the block, through the handler it would have met. (Masking the signal would
    not do: the kernel hands a process's signal to any thread, e.g. a BLAS worker, and
    Python runs the handler in the main thread at the next bytecode.) Only the main thread
    can set handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for number in dict.fromkeys(pending):
            signal.raise_signal(number)


# --------------------------------------------------------------------------- status


def read_status(folder: Path) -> dict[str, Any] | None:
    """status.json of a run folder, with a ``running`` run whose process is gone reported as
    ``interrupted``; None if the file is missing or unreadable."""
    try:
        status = json.loads((folder / "status.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict):
        return None
    if status.get("state") == State.RUNNING and not _alive(status):
        status = {**status, "state": State.INTERRUPTED, "error": "the training process is gone"}
    return status


def _alive(status: dict[str, Any]) -> bool:
    if status.get("host") != socket.gethostname():
        return True  # another machine's process: cannot tell, assume it is still running
    pid = status.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(cfg: ExperimentConfig, runs_dir: str | Path | None = None) -> str | None:
    """State of ``cfg``'s run folder (a dead ``running`` reads as interrupted); None if it
    has no folder yet."""
    status = read_status(run_dir(cfg, runs_dir))
    return status.get("state", State.FAILED) if status else None


# --------------------------------------------------------------------------- claiming


@dataclass
class Claim:
    """Outcome of :func:`claim`: a run to train (``run``), or why not (``existing``)."""

    path: Path
    run: Run | None
    existing: str | None = None  # completed | running | failed | diverged | interrupted


def claim(
    root: Path,
    rid: str,
    *,
    force: bool = False,
    retry_failed: bool = False,
    carry: Iterable[str] = (),
) -> Claim:
    """Claim ``root/rid`` for training, or report the state that makes us leave it alone.

    What is replaced follows :func:`should_train`, the one rule for every command. Files
    named in ``carry`` (a checkpoint to resume from) move from the replaced folder into the
    new one; everything else of the replaced folder is deleted.
    """
    path = root / rid
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "it is a file, not a folder" if root.is_file() else exc.strerror
        raise RunError(f"{root}: cannot create the runs folder ({why})") from None
    aside: Path | None = None
    try:
        for _ in range(5):  # a few rounds in case another process moves the folder under us
            try:
                path.mkdir()
            except FileExistsError:
                pass
            except OSError as exc:
                raise RunError(f"{path}: cannot create the run folder ({exc.strerror})") from None
            else:
                run = _start_run(path)
                _carry(aside, path, carry)
                return Claim(path, run)
            seen = _identity(path)
            state = _existing_state(path)
            if not should_train(state, force, retry_failed):
                return Claim(path, None, state)
            moved = _move_aside(path, seen)
            if moved is not None:
                _remove(aside)
                aside = moved
    finally:
        _remove(aside)
    raise RunError(f"{path}: could not claim the run folder (other processes keep taking it)")


def _start_run(path: Path) -> Run:
    """A :class:`Run` in the folder just created; if its first write fails, no folder."""
    try:
        return Run(path)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def _carry(aside: Path | None, path: Path, names: Iterable[str]) -> None:
    if aside is None:
        return
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.replace(aside / name, path / name)


def _remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _existing_state(path: Path) -> str:
    status = read_status(path)
    if status is None:
        # Just claimed by another process that has not written status.json yet, or a folder
        # whose status is unreadable: give a fresh claim a moment before judging it.
        time.sleep(0.2)
        status = read_status(path)
    return status.get("state", State.FAILED) if status else State.FAILED


def should_train(state: str | None, force: bool = False, retry_failed: bool = False) -> bool:
    """Whether a run whose folder is in ``state`` (None: no folder) is (re)trained.

    An interrupted run is retrained by default (Ctrl-C, SIGTERM or a killed process says
    nothing about the experiment; ``--resume`` continues it from its checkpoint); failed and
    diverged runs only with ``retry_failed``; completed ones only with ``force``; a run
    another live process is training never.
    """
    if state is None or state == State.INTERRUPTED:
        return True
    if state == State.RUNNING:
        return False
    return force or (retry_failed and state in FINISHED_BAD)


def _identity(path: Path) -> tuple[int, int] | None:
    """(folder inode, status.json mtime): tells a replaced folder apart even when the new
    folder reuses the old inode. (The folder's own ctime changes when it is renamed.)"""
    try:
        return path.stat().st_ino, (path / "status.json").stat().st_mtime_ns
    except OSError:
        return None


def _move_aside(path: Path, seen: tuple[int, int] | None) -> Path | None:
    """Rename the folder judged replaceable out of the way; return where it went (the caller
    deletes it), or None if another process got there first.

    Two processes may both judge the same finished folder replaceable (``--force`` twice):
    the first moves it and claims a fresh one; if the second then moved that fresh folder, the
    folder's identity tells it so and it puts the folder straight back.
    """
    aside = path.with_name(f".{path.name}.old-{os.getpid()}-{time.time_ns()}")
    try:
        os.rename(path, aside)  # only one process wins; the others see the new claim
    except FileNotFoundError:
        return None
    if _identity(aside) != seen:
        with contextlib.suppress(OSError):
            os.rename(aside, path)
        return None
    return aside


# --------------------------------------------------------------------------- a run


class Run:
    """A claimed run folder that this process writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()
        self.history: list[dict[str, Any]] = []
        self._last: dict[str, Any] = {}
        self._status(State.RUNNING)  # at once, so a concurrent claimer sees who owns the folder

    def start(self, config_yaml: str, config_hash: str, env: dict[str, Any]) -> None:
        write_atomic(self.path / "config.yaml", config_yaml)
        write_json(self.path / "env.json", env)
        self._status(State.RUNNING, config_hash=config_hash)

    def add_epoch(self, row: dict[str, Any]) -> None:
        rows = [*self.history, row]
        with signals_deferred():  # epochs_done always counts what history.csv holds
            write_csv(self.path / "history.csv", rows)
            self.history = rows

    def resume_history(self, rows: list[dict[str, Any]]) -> None:
        """Start from a checkpoint's rows: epochs after the checkpoint are trained again."""
        self.history = list(rows)
        write_csv(self.path / "history.csv", self.history)
        self._status(State.RUNNING, resumed_from_epoch=len(rows), checkpoint_epoch=len(rows))

    def write_checkpoint(self, ckpt: Checkpoint, config_hash: str) -> None:
        """Save ``ckpt`` as checkpoint.npz (arrays, and the rest as JSON), atomically."""
        import numpy as np

        meta = {
            "format": CHECKPOINT_FORMAT,
            "config_hash": config_hash,
            "epoch": ckpt.epoch,
            "rng_state": ckpt.rng_state,
            "history": ckpt.history,
        }
        arrays = {f"param.{k}": v for k, v in ckpt.params.items()}
        arrays |= {f"optimizer.{k}": v for k, v in ckpt.optimizer.items()}
        arrays["meta"] = np.array(json.dumps(meta, allow_nan=True))
        with signals_deferred():  # checkpoint_epoch always names the file on disk
            write_npz(self.path / CHECKPOINT, arrays, compress=False)
            self._status(State.RUNNING, checkpoint_epoch=ckpt.epoch)

    def remove_checkpoint(self) -> None:
        (self.path / CHECKPOINT).unlink(missing_ok=True)

    def write_results(
        self, metrics: dict[str, Any], predictions: dict[str, Any], params: dict[str, Any]
    ) -> None:
        write_json(self.path / "metrics.json", metrics)
        write_npz(self.path / "predictions.npz", predictions)
        write_npz(self.path / "model.npz", params)

    @property
    def seconds(self) -> float:
        return time.time() - self.started

    def finish(self, state: str, error: str | None = None, **extra: Any) -> None:
        """Record the final state, with the number of finished epochs (``epochs_done``)."""
        self._status(
            state,
            error=error,
            finished=_now(),
            seconds=time.time() - self.started,
            epochs_done=len(self.history),
            **extra,
        )

    def _status(self, state: str, **fields: Any) -> None:
        status = {
            "state": state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _iso(self.started),
            **fields,
        }
        self._last = {**self._last, **status}
        write_json(self.path / "status.json", self._last)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def _now() -> str:
    return _iso(time.time())


# --------------------------------------------------------------------------- reading back


def iter_run_folders(root: Path) -> Iterable[Path]:
    """Every folder directly under ``root`` that looks like a run: it has a status.json or a
    config.yaml (so other folders there, such as plots, are not mistaken for broken runs)."""
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_run_folder(p)
    )


def is_run_folder(path: Path) -> bool:
    """A run folder has a status.json or a config.yaml (even if a run crashed early)."""
    return (path / "status.json").exists() or (path / "config.yaml").exists()


def read_json(path: Path) -> Any:
    """Parse a JSON file of a run; a one-line :class:`RunError` if it is missing or corrupt."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None


def read_checkpoint(folder: Path, expected_hash: str) -> Checkpoint | None:
    """The checkpoint of a run folder, None if it has none; a one-line :class:`RunError` if
    it is unreadable or belongs to another experiment."""
    from mnistexp.checkpoints import Checkpoint

    path = folder / CHECKPOINT
    if not path.exists():
        return None
    hint = f"delete it to train from the start ({path})"
    try:
        arrays = read_npz(path)
        meta = json.loads(str(arrays.pop("meta")))
        params = {k.removeprefix("param."): v for k, v in arrays.items() if k.startswith("param.")}
        state = {
            k.removeprefix("optimizer."): v for k, v in arrays.items() if k.startswith("optimizer.")
        }
        ckpt = Checkpoint(int(meta["epoch"]), params, state, meta["rng_state"], meta["history"])
    except (*NPZ_ERRORS, TypeError) as exc:
        raise RunError(f"{path}: unreadable checkpoint ({exc}); {hint}") from None
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("config_hash") != expected_hash:
        raise RunError(f"{path}: the checkpoint belongs to another experiment or format; {hint}")
    return ckpt
