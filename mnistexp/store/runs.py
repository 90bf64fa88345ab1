"""The run-folder contract: claiming, atomic writes, status, reading back.

``<root>/<name>-<hash8>-s<seed>/`` holds config.yaml (and its JSON copy config.json), status.json,
history.csv, metrics.json, predictions.npz, model.npz and env.json. Only this module writes run
folders. The name is not part of a run's identity (config hash and seed): :func:`find_run` finds
the folder of the same experiment finished or running under another name, so every command
reuses it instead of training the experiment a second time.

Concurrency: a folder is claimed by an atomic ``mkdir``, so of two processes starting the same
run exactly one trains it. Re-running a failed run first renames the old folder aside (atomic:
only one process can move it), then claims afresh. Every file is written to a temporary name in
the folder and renamed into place, so readers never see half a file; the owner writes through
a handle on the folder it claimed, so once its folder was moved aside by a takeover nothing it
writes can reach the new folder (see :class:`Run`).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistexp.config.identity import config_hash
from mnistexp.config.loading import ExperimentConfig
from mnistexp.core import atomic
from mnistexp.core.bounded import open_regular, read_bounded
from mnistexp.core.errors import RunError
from mnistexp.core.paths import check_names
from mnistexp.core.states import RETRAIN, WRITTEN, State
from mnistexp.store import liveness

if TYPE_CHECKING:
    from mnistexp.learning.checkpoints import Checkpoint

STATES = WRITTEN  # the values status.json holds
FINISHED_BAD = (State.FAILED, State.DIVERGED, State.INTERRUPTED)
RESUMABLE = (State.INTERRUPTED, State.FAILED)  # states whose checkpoint --resume continues from
CHECKPOINT = "checkpoint.npz"
CONFIG_JSON = "config.json"  # config.yaml as JSON; folders written before it lack it
SHIFT_JSON = "shift.json"  # evaluation beyond the test set (mnistexp.pipeline.shifted)
SHIFT_NPZ = "shift_predictions.npz"  # its probabilities, for seed ensembles
CHECKPOINT_FORMAT = 1


def runs_root(option: str | Path | None = None) -> Path:
    """``--runs-dir``, else ``MNISTEXP_RUNS_DIR``, else ``./runs``; a one-line UsageError
    for a name the filesystem cannot hold (an empty ``--runs-dir`` is one, not ``./runs``)."""
    if option is not None:
        return check_names(option, "--runs-dir")
    env = os.environ.get("MNISTEXP_RUNS_DIR")
    return check_names(env, "MNISTEXP_RUNS_DIR") if env else Path("runs")


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
    """Write ``data`` to ``path`` through :mod:`mnistexp.core.atomic` (a temporary file beside it
    and a rename, created with the user's umask); a one-line RunError if it cannot be."""
    try:
        atomic.write_file(path, data)
    except OSError as exc:  # a full disk, a quota, a vanished folder: the old file stays
        raise RunError(f"cannot write {path} ({exc.strerror or exc})") from None


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json_text(obj))


def json_text(obj: Any) -> str:
    """``obj`` as a run folder's JSON files hold it (indented, NaN allowed)."""
    return json.dumps(obj, indent=2, allow_nan=True) + "\n"


def write_npz(path: Path, arrays: dict[str, Any], compress: bool = True) -> None:
    write_atomic(path, npz_bytes(arrays, compress))


def npz_bytes(arrays: dict[str, Any], compress: bool = True) -> bytes:
    """``arrays`` as the bytes of an .npz file (compressed unless ``compress`` is False)."""
    import numpy as np

    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def shift_files(report: dict[str, Any], arrays: dict[str, Any]) -> list[tuple[str, bytes | str]]:
    """(name, bytes) of shift_predictions.npz and shift.json, in the order they are written:
    the arrays first, then the report naming their SHA-256 (``predictions_sha256``), so a
    report never describes arrays that are not there and a reader can tell stale ones.

    The arrays are stored, not deflated: float16 probabilities shrink by only about 15% (6.2
    to 5.3 MB for the default evaluation) for a third of a second of zlib on writing and
    more on every read by compare."""
    blob = npz_bytes(arrays, compress=False)
    report = {**report, "predictions_sha256": hashlib.sha256(blob).hexdigest()}
    return [(SHIFT_NPZ, blob), (SHIFT_JSON, json_text(report))]


def write_shift(folder: Path, report: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Add the evaluation beyond the test set to the finished run ``folder`` (``mnistexp
    evaluate``): each file written atomically; the run's other files are not touched."""
    for name, data in shift_files(report, arrays):
        write_atomic(folder / name, data)


NPZ_ERRORS = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
"""What :func:`read_npz` raises for a missing, truncated or corrupt file."""


def read_npz(path: Path, keys: Sequence[str] | None = None) -> dict[str, Any]:
    """The arrays ``keys`` (default: all) of an .npz file, never unpickling anything; one of
    :data:`NPZ_ERRORS` if the file is unusable. The file is opened through our own handle,
    since ``np.load`` leaks its file when the zip directory is corrupt."""
    import numpy as np

    with open_regular(path) as handle:  # a FIFO or a device is refused, never read
        npz = np.load(handle, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with npz:
            return {key: npz[key] for key in (npz.files if keys is None else keys)}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    write_atomic(path, csv_text(rows))


def csv_text(rows: list[dict[str, Any]]) -> str:
    """``rows`` as history.csv holds them: a header, then one line per row."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


signals_deferred = atomic.signals_deferred  # a file and its status, written together


# --------------------------------------------------------------------------- status


def read_status(folder: Path) -> dict[str, Any] | None:
    """The status of the run folder ``folder``; None if nothing is there.

    The one reading of a folder's state that every command uses: a ``running`` run whose
    process is gone reads as ``interrupted``, and a folder whose status cannot be trusted
    (see :mod:`mnistexp.core.states`) as ``unreadable``, with the reason in ``error``.
    """
    try:
        kind = os.lstat(folder).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _unreadable(f"cannot be read ({exc.strerror or exc})")
    if not stat.S_ISDIR(kind):
        return _unreadable(_not_a_folder(kind))
    status, problem = _parse_status(folder / "status.json")
    if status is None:
        return _unreadable(problem)
    if status["state"] == State.RUNNING:
        gone = liveness.why_dead(status, folder / "status.json")
        if gone:
            status = {**status, "state": State.INTERRUPTED, "error": gone}
    return status


def _unreadable(reason: str) -> dict[str, Any]:
    return {"state": State.UNREADABLE, "error": reason}


def _not_a_folder(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link, not a run folder"
    return "a file, not a run folder" if stat.S_ISREG(mode) else "not a folder"


def _parse_status(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(status.json as a dict with a known ``state``, "") or (None, why it is unusable)."""
    try:
        text = read_bounded(path)  # a FIFO, a device or a huge file: refused, never read
    except FileNotFoundError:
        return None, "no status.json"
    except OSError as exc:
        return None, f"status.json cannot be read ({exc.strerror or exc})"
    if not text.strip():
        return None, "status.json is empty"
    try:
        status = parse_json(text)
    except ValueError as exc:
        return None, f"status.json is not valid JSON ({exc})"
    if not isinstance(status, dict):
        return None, "status.json is not a JSON object"
    state = status.get("state")
    if state is None:
        return None, "status.json has no state"
    if state not in WRITTEN:
        return None, f"status.json has an unknown state {str(state)[:40]!r}"
    return {**status, "state": State(state)}, ""


def parse_json(text: bytes | str) -> Any:
    """JSON text as Python objects; ValueError (one line) for anything that is not JSON,
    including bytes that are not UTF-8 and nesting too deep for Python's parser."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte at offset {exc.start})") from None
    except ValueError as exc:
        raise ValueError(str(exc).splitlines()[0] if str(exc) else "not JSON") from None


def run_state(cfg: ExperimentConfig, runs_dir: str | Path | None = None) -> State | None:
    """State of ``cfg``'s run folder as :func:`read_status` reads it; None if it has none."""
    status = read_status(run_dir(cfg, runs_dir))
    return status["state"] if status else None


# --------------------------------------------------------------------------- identity


FOUND_STATES = (State.COMPLETED, State.RUNNING)
"""States in which a folder stands for its experiment, whatever its name: a finished run is
reused, a run in progress is left to its owner."""

_IDENTITY_SUFFIX = re.compile(r"-[0-9a-f]{8}-s[0-9]+\Z")

Listing = dict[str, list[str]]
"""``-<hash8>-s<seed>`` -> the names under a runs folder that end with it (:func:`listing`)."""


def listing(root: Path) -> Listing:
    """The run folders under ``root`` by the identity at the end of their names, read once
    for a sweep's many :func:`find_run` calls; empty if ``root`` cannot be listed."""
    out: Listing = {}
    try:
        names = os.listdir(root)
    except OSError:
        return out
    for name in sorted(names):
        found = _IDENTITY_SUFFIX.search(name)
        if found and not name.startswith("."):
            out.setdefault(found.group(), []).append(name)
    return out


def find_run(
    cfg: ExperimentConfig, runs_dir: str | Path | None = None, names: Listing | None = None
) -> Path:
    """The folder that stands for ``cfg``'s run: one experiment (config hash and seed), one
    folder, whatever its name.

    Its own folder ``<name>-<hash8>-s<seed>`` when that holds a completed or running run;
    otherwise a folder of the same runs root named ``<other>-<hash8>-s<seed>`` whose
    status.json records this config's full ``config_hash`` (the eight digits in the name are
    not enough) and that is completed (first choice) or running; otherwise its own folder,
    trained or retrained there as before. ``names``: a :func:`listing` of the runs root made
    earlier (a sweep lists the folder once); by default it is listed here.
    """
    chash = config_hash(cfg)
    root = runs_root(runs_dir)
    own = root / run_id(cfg.name, chash, cfg.seed)
    status = read_status(own)
    if status is not None and status["state"] in FOUND_STATES:
        return own
    suffix = f"-{chash[:8]}-s{cfg.seed}"
    candidates = (listing(root) if names is None else names).get(suffix, [])
    found: dict[str, Path] = {}
    for name in candidates:
        if name == own.name:
            continue
        other = read_status(root / name)
        if other and other.get("config_hash") == chash and other["state"] in FOUND_STATES:
            found.setdefault(other["state"], root / name)
    return found.get(State.COMPLETED) or found.get(State.RUNNING) or own


def named_as(cfg: ExperimentConfig, folder: Path) -> ExperimentConfig:
    """``cfg`` under the name of its run's ``folder`` (found under another name by
    :func:`find_run`), so a run retrained there keeps the folder's name in its config."""
    suffix = _IDENTITY_SUFFIX.search(folder.name)
    name = folder.name[: suffix.start()] if suffix else cfg.name
    return cfg if name == cfg.name else dataclasses.replace(cfg, name=name)


# --------------------------------------------------------------------------- claiming


@dataclass
class Claim:
    """Outcome of :func:`claim`: a run to train (``run``), or why not (``existing``)."""

    path: Path
    run: Run | None
    existing: State | None = None


def claim(
    root: Path,
    rid: str,
    *,
    force: bool = False,
    retry_failed: bool = False,
    carry: Iterable[str] = (),
) -> Claim:
    """Claim ``root/rid`` for training, or report the state that makes us leave it alone.

    What is replaced follows :func:`should_train`, the one rule for every command. A new
    folder appears with its status.json already in it (it is prepared under a hidden name and
    renamed into place), so no process ever sees a claimed folder without a status. Files
    named in ``carry`` (a checkpoint to resume from) move from the replaced folder into the
    new one; everything else of the replaced folder is deleted.
    """
    path = root / rid
    make_runs_root(root)
    _sweep_leftovers(root, rid)
    aside: Path | None = None
    try:
        for _ in range(5):  # a few rounds in case another process moves the folder under us
            status = read_status(path)
            if status is not None:
                if not should_train(status["state"], force, retry_failed):
                    return Claim(path, None, status["state"])
                moved = _move_aside(path, _identity(path))
                if moved is not None:
                    _remove(aside)
                    aside = moved
                continue
            run = _claim_fresh(path)
            if run is not None:
                _carry(aside, path, carry)
                return Claim(path, run)
    finally:
        _remove(aside)
    raise RunError(f"{path}: could not claim the run folder (other processes keep taking it)")


def make_runs_root(root: Path) -> None:
    """Create the runs folder ``root``; a one-line RunError if it cannot be."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "it is a file, not a folder" if root.is_file() else exc.strerror
        raise RunError(f"{root}: cannot create the runs folder ({why})") from None


PROBE_BYTES = 4096  # a page: a full disk refuses it where an empty file may still fit


def check_runs_root(root: Path) -> None:
    """Create the runs folder ``root`` and prove a run can be written there, before a sweep
    starts: a hidden folder holding a small file is created and removed. Permission bits say
    nothing for root, a read-only mount or a full disk. A one-line RunError otherwise, the
    same whether the sweep runs in this process or in workers."""
    make_runs_root(root)
    probe: Path | None = None
    try:
        probe = Path(tempfile.mkdtemp(prefix=".mnistexp-probe-", dir=root))
        (probe / "probe").write_bytes(bytes(PROBE_BYTES))
    except OSError as exc:
        raise RunError(f"{root}: cannot write into the runs folder ({exc.strerror})") from None
    finally:
        _remove(probe)


_LEFTOVER_AGE_S = 600.0  # a claim is staged, and a replaced folder deleted, in well under this


def _sweep_leftovers(root: Path, rid: str) -> None:
    """Delete hidden leftovers of ``rid`` (a staged claim, a folder moved aside) that a
    process killed mid-way left behind: those older than :data:`_LEFTOVER_AGE_S`."""
    prefix = f".{rid}."
    try:
        names = [n for n in os.listdir(root) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            if time.time() - os.lstat(root / name).st_mtime > _LEFTOVER_AGE_S:
                _remove(root / name)


def _claim_fresh(path: Path) -> Run | None:
    """A new run folder at ``path`` holding its first status.json, or None if another
    process claimed ``path`` first. Prepared under a hidden name and renamed into place (a
    rename onto an existing non-empty folder fails, so exactly one claimer wins)."""
    staged = path.with_name(f".{path.name}.claim-{os.getpid()}-{time.time_ns()}")
    try:
        staged.mkdir()
    except OSError as exc:
        raise RunError(f"{path}: cannot create the run folder ({exc.strerror})") from None
    run: Run | None = None
    try:
        with signals_deferred():  # the folder appears with its owner, or not at all
            run = Run(staged)
            os.rename(staged, path)
            run.placed(path)
    except OSError as exc:
        if run is not None:
            run.close()
        _remove(staged)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            return None  # someone else's folder (or a file) got there first
        raise RunError(f"{path}: cannot create the run folder ({exc.strerror})") from None
    except BaseException:
        if run is not None:
            run.close()
        _remove(staged)
        raise
    return run


def _carry(aside: Path | None, path: Path, names: Iterable[str]) -> None:
    if aside is None:
        return
    for name in names:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.replace(aside / name, path / name)


def _remove(entry: Path | None) -> None:
    """Delete a folder moved aside (or a file or link standing where a folder should be)."""
    if entry is None:
        return
    if entry.is_symlink() or not entry.is_dir():
        with contextlib.suppress(OSError):
            entry.unlink()
        return
    shutil.rmtree(entry, ignore_errors=True)


def should_train(state: str | None, force: bool = False, retry_failed: bool = False) -> bool:
    """Whether a run whose folder is in ``state`` (None: no folder) is (re)trained:
    :data:`mnistexp.core.states.RETRAIN`, the one rule of every command."""
    if state is None:
        return True
    rule = RETRAIN[State(state)]
    return (
        rule == "always"
        or (rule == "force" and force)
        or (rule == "retry_failed" and (force or retry_failed))
    )


def _identity(path: Path) -> tuple[int, int] | None:
    """(entry inode, status.json mtime): tells a replaced folder apart even when the new
    folder reuses the old inode. (The folder's own ctime changes when it is renamed.)"""
    try:
        inode = path.lstat().st_ino
    except OSError:
        return None
    try:
        return inode, (path / "status.json").stat().st_mtime_ns
    except OSError:
        return inode, 0


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
    except OSError as exc:
        raise RunError(f"{path}: cannot replace it ({exc.strerror})") from None
    if _identity(aside) != seen:
        with contextlib.suppress(OSError):
            os.rename(aside, path)
        return None
    return aside


# --------------------------------------------------------------------------- a run


class Run:
    """A claimed run folder that this process writes.

    While it runs, a :class:`mnistexp.store.liveness.Heartbeat` thread refreshes ``heartbeat`` in
    status.json, so readers on any host can tell a live owner from a dead one.

    The fence: the run holds its folder open (a directory descriptor, taken when the folder is
    claimed) and writes every file through that descriptor (:meth:`_write`), never through the
    folder's name. A takeover always renames the old folder aside before a new folder takes
    its name (:func:`claim`), so a process that was stopped past its lease and wakes up after
    a takeover writes, if at all, into its own folder that was moved aside (and deleted), never
    into the new owner's: there is no window between a check and a rename to lose, since the
    name is not used. Before each write the run also checks that its folder is still the one
    at its name and that status.json names this process (:meth:`_check_owned`), and stops with
    a :class:`RunError` once it is not. Where the system has no directory descriptors
    (:data:`mnistexp.core.atomic.DIR_FD_WRITES` is False) only that check remains, with the window
    between it and the rename.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()
        self.history: list[dict[str, Any]] = []
        self._last: dict[str, Any] = {}
        self._lock = threading.Lock()  # the heartbeat thread and this one write status.json
        self._lease = liveness.lease_seconds()
        self._heartbeat: liveness.Heartbeat | None = None
        self._placed = False  # renamed into place: from then on every write checks ownership
        self._closed = False
        self._dir = _open_folder(path)  # the fence: files are written through this handle
        self.lost = False  # another process took the folder over
        try:
            self._status(State.RUNNING)  # at once, so a concurrent claimer sees the owner
        except BaseException:
            self.close()
            raise

    def placed(self, path: Path) -> None:
        """The claimed folder now lives at ``path``: start beating."""
        self.path = path
        self._placed = True
        self._heartbeat = liveness.Heartbeat(self._beat, liveness.beat_interval(self._lease))
        self._heartbeat.start()

    def close(self) -> None:
        """Stop the heartbeat and let go of the folder (the run is finished, or this process
        gives up on it); nothing is written afterwards."""
        self._stop_beating()
        with self._lock:
            self._closed = True
            if self._dir is not None:
                os.close(self._dir)
                self._dir = None

    def _stop_beating(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()

    def _beat(self) -> bool:
        """One heartbeat; False once the run is finished or lost (the thread then ends)."""
        try:
            with self._lock:
                if self._last.get("state") != State.RUNNING or self.lost or self._closed:
                    return False
                self._check_owned()
                self._write_status({})
        except RunError:
            return not self.lost  # a full disk: try again at the next beat
        return True

    def _check_owned(self) -> None:
        """Raise RunError if the folder at :attr:`path` is no longer the one this process
        claimed, or its status.json names another owner."""
        if not self._placed:
            return
        if not self.lost:  # a read error is no verdict: the next write checks again
            status, problem = _parse_status(self.path / "status.json")
            mine = ("host", "pid", "pid_start", "started")
            self.lost = (
                not self._same_folder()
                or (status is None and problem == "no status.json")
                or (status is not None and any(status.get(k) != self._last.get(k) for k in mine))
            )
        if self.lost:
            self._stop_beating()
            raise RunError(
                f"{self.path}: another process took this run over (this one was silent for "
                "longer than the lease); it stops here without touching the folder"
            )

    def _same_folder(self) -> bool:
        """Whether :attr:`path` is still the folder this process holds open."""
        if self._dir is None:
            return True  # no handle (closed, or a system without them): status.json decides
        try:
            here = os.lstat(self.path)
        except FileNotFoundError:
            return False
        except OSError:
            return True  # no verdict
        held = os.fstat(self._dir)
        return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)

    def _write(self, name: str, data: bytes | str) -> None:
        """Write the run file ``name`` atomically into the folder this process claimed,
        through its handle (the fence); a one-line RunError if it cannot be, which says so
        if the run was taken over meanwhile."""
        if self._closed:
            raise RunError(f"{self.path / name}: the run is closed; nothing more is written")
        try:
            atomic.write_file(name if self._dir is not None else self.path / name, data, self._dir)
        except OSError as exc:  # a full disk, a quota, or our folder was moved aside
            self._check_owned()
            raise RunError(f"cannot write {self.path / name} ({exc.strerror or exc})") from None

    def start(
        self,
        config_yaml: str,
        config_hash: str,
        env: dict[str, Any],
        resolved: dict[str, Any] | None = None,
    ) -> None:
        """Write config.yaml, its machine-readable copy config.json (``resolved``, the same
        config as a dict: what compare reads, far faster than YAML), env.json, the status."""
        self._check_owned()
        self._write("config.yaml", config_yaml)
        if resolved is not None:
            self._write(CONFIG_JSON, json.dumps(resolved) + "\n")
        self._write("env.json", json_text(env))
        self._status(State.RUNNING, config_hash=config_hash)

    def add_epoch(self, row: dict[str, Any]) -> None:
        self._check_owned()
        rows = [*self.history, row]
        with signals_deferred():  # epochs_done always counts what history.csv holds
            self._write("history.csv", csv_text(rows))
            self.history = rows

    def resume_history(self, rows: list[dict[str, Any]]) -> None:
        """Start from a checkpoint's rows: epochs after the checkpoint are trained again."""
        self.history = list(rows)
        self._write("history.csv", csv_text(self.history))
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
        self._check_owned()
        with signals_deferred():  # checkpoint_epoch always names the file on disk
            self._write(CHECKPOINT, npz_bytes(arrays, compress=False))
            self._status(State.RUNNING, checkpoint_epoch=ckpt.epoch)

    def remove_checkpoint(self) -> None:
        self._check_owned()
        with contextlib.suppress(FileNotFoundError):
            if self._dir is None:
                (self.path / CHECKPOINT).unlink()
            else:
                os.unlink(CHECKPOINT, dir_fd=self._dir)

    def write_results(
        self, metrics: dict[str, Any], predictions: dict[str, Any], params: dict[str, Any]
    ) -> None:
        self._check_owned()
        self._write("metrics.json", json_text(metrics))
        self._write("predictions.npz", npz_bytes(predictions))
        self._write("model.npz", npz_bytes(params))

    def write_shift(self, report: dict[str, Any], arrays: dict[str, Any]) -> None:
        """The evaluation beyond the test set, when the config asks for it at training."""
        self._check_owned()
        for name, data in shift_files(report, arrays):
            self._write(name, data)

    @property
    def seconds(self) -> float:
        return time.time() - self.started

    def finish(self, state: str, error: str | None = None, **extra: Any) -> None:
        """Record the final state, with the number of finished epochs (``epochs_done``)."""
        self._stop_beating()
        self._status(
            state,
            error=error,
            finished=_now(),
            seconds=time.time() - self.started,
            epochs_done=len(self.history),
            **extra,
        )

    def _status(self, state: str, **fields: Any) -> None:
        with self._lock:
            self._check_owned()
            self._write_status({"state": state, **fields})

    def _write_status(self, fields: dict[str, Any]) -> None:
        """Write status.json: the last status, updated by ``fields`` and a fresh heartbeat
        (the caller holds the lock and has checked ownership)."""
        owner = liveness.owner_fields(self._lease)
        status = {**self._last, **fields, **owner, "started": _iso(self.started)}
        self._write("status.json", json_text(status))
        self._last = status


def _open_folder(path: Path) -> int | None:
    """A handle on the folder ``path`` to write its files through (None where the system
    cannot); a one-line RunError if it cannot be opened."""
    if not atomic.DIR_FD_WRITES:
        return None
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise RunError(f"{path}: cannot open the run folder ({exc.strerror or exc})") from None


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def _now() -> str:
    return _iso(time.time())


# --------------------------------------------------------------------------- reading back


RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*-[0-9a-f]{8}-s[0-9]+")
"""What a run folder's name looks like: ``<name>-<hash8>-s<seed>``."""


def iter_run_folders(root: Path) -> Iterable[Path]:
    """Every entry directly under ``root`` that is a run: a folder with a status.json or a
    config.yaml, or anything named like a run (:data:`RUN_ID`), which then reads as
    ``unreadable`` if it is no usable folder. Other folders there (plots) are left alone."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and is_run_folder(p))


def is_run_folder(path: Path) -> bool:
    """Named like a run, or a folder with a status.json or a config.yaml."""
    if RUN_ID.fullmatch(path.name):
        return True
    try:
        return path.is_dir() and (
            (path / "status.json").exists() or (path / "config.yaml").exists()
        )
    except OSError:  # a name too long for the filesystem, a folder we may not enter
        return False


def read_json(path: Path) -> Any:
    """Parse a JSON file of a run; a one-line :class:`RunError` if it is missing or corrupt."""
    try:
        return parse_json(read_bounded(path))
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except OSError as exc:
        raise RunError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None


def read_checkpoint(folder: Path, expected_hash: str) -> Checkpoint | None:
    """The checkpoint of a run folder, None if it has none; a one-line :class:`RunError` if
    it is unreadable or belongs to another experiment."""
    from mnistexp.learning.checkpoints import Checkpoint

    path = folder / CHECKPOINT
    if not path.exists():
        return None
    hint = f"delete it to train from the start ({path})"
    try:
        arrays = read_npz(path)
        meta = parse_json(str(arrays.pop("meta")))
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
