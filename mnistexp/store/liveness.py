"""Is the process that a ``running`` status.json names still alive, wherever it runs?

A run's owner refreshes ``heartbeat`` (UTC, ``2026-12-02T18:42:08Z``) in its status.json
every :func:`beat_interval` seconds from a background thread (:class:`Heartbeat`), so the
refresh costs one small file write a minute, never one per batch. A reader on any machine
judges the run by :func:`why_dead`:

- a heartbeat older than the lease (the larger of ``MNISTEXP_LEASE_SECONDS``, default 300,
  and the ``lease_seconds`` the owner wrote) means the owner is gone, on any host: killed
  hard on another node, its node crashed, or the process is stopped; so does one more than a
  lease in the future (no owner whose clock agrees wrote it);
- on the owner's own host, a pid that no longer exists, or that now belongs to another
  process (its start time, ``pid_start`` from ``/proc/<pid>/stat``, differs), means the same
  at once, without waiting for the lease.

Folders written before heartbeats existed have neither field: on their own host the pid
decides as before; from another host the status.json's modification time stands in for the
heartbeat. Clocks of the machines sharing a runs folder must agree to well within the lease
(NTP does). A leaf apart from :mod:`mnistexp.core.errors`.
"""

from __future__ import annotations

import calendar
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnistexp.core.errors import UsageError

LEASE_ENV = "MNISTEXP_LEASE_SECONDS"
DEFAULT_LEASE_S = 300.0
MAX_BEAT_INTERVAL_S = 60.0
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def lease_seconds() -> float:
    """``MNISTEXP_LEASE_SECONDS`` (at least 1), else 300; a one-line UsageError if invalid."""
    text = os.environ.get(LEASE_ENV)
    if not text:
        return DEFAULT_LEASE_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        raise UsageError(
            f"{LEASE_ENV} = {text[:40]!r} is invalid: expected a number of seconds >= 1, e.g. 300"
        )
    return value


def beat_interval(lease: float) -> float:
    """Seconds between heartbeats: a quarter of the lease, at most a minute."""
    return min(MAX_BEAT_INTERVAL_S, lease / 4)


def utc_now() -> str:
    """The current time as a heartbeat: ``2026-12-02T18:42:08Z``."""
    return time.strftime(_UTC_FORMAT, time.gmtime())


def parse_utc(value: Any) -> float | None:
    """A heartbeat string as a Unix time; None if it is missing or malformed."""
    if not isinstance(value, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(value, _UTC_FORMAT)))
    except ValueError:
        return None


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc``); None where
    that cannot be read (no such process, no ``/proc``). Together with the pid it names one
    process: a reused pid has another start time."""
    try:
        text = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = text.rpartition(b")")[2].split()  # the command name may hold spaces
    try:
        return int(fields[19])  # field 22 of proc(5), counting from 1 before the name
    except (IndexError, ValueError):
        return None


def owner_fields(lease: float) -> dict[str, Any]:
    """What a running owner writes into its status.json with every write."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_start": process_start(os.getpid()),
        "heartbeat": utc_now(),
        "lease_seconds": lease,
    }


def why_dead(status: dict[str, Any], status_file: Path) -> str | None:
    """Why the owner of a ``running`` status is gone; None while it may be alive."""
    lease = lease_seconds()
    written = status.get("lease_seconds")
    if isinstance(written, (int, float)) and not isinstance(written, bool):
        lease = max(lease, float(written)) if math.isfinite(written) else lease
    host = status.get("host")
    here = host == socket.gethostname()
    beat = parse_utc(status.get("heartbeat"))
    if beat is None and not here:  # written before heartbeats: the file's age stands in
        try:
            beat = status_file.stat().st_mtime
        except OSError:
            beat = None
    if beat is not None:
        stale = _stale(time.time() - beat, lease, host)
        if stale:
            return stale
    return _pid_gone(status) if here else None


def _stale(age: float, lease: float, host: Any) -> str | None:
    """Why a heartbeat ``age`` seconds old means its owner is gone; None if it does not.

    Older than the lease: the owner stopped beating. More than a lease in the future: no
    live owner whose clock agrees with this host's (the rule every host sharing a runs
    folder keeps) can have written it, and waiting for it would keep the run away for as
    long as the clock is wrong (a heartbeat in year 2999: forever).
    """
    if age > lease:
        return (
            f"no heartbeat for {age:.0f} s, longer than the lease ({lease:g} s): "
            f"the training process on {host} is gone"
        )
    if -age > lease:
        return (
            f"heartbeat {-age:.0f} s ahead of this host's clock, more than the lease "
            f"({lease:g} s): no live process on {host} with a clock that agrees wrote it"
        )
    return None


def _pid_gone(status: dict[str, Any]) -> str | None:
    """Why the owner on this host is gone (no such pid, or the pid was reused); None if not."""
    pid = status.get("pid")
    gone = "the training process is gone"
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return gone
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or no pid this system can have
        return gone
    except PermissionError:  # alive, owned by someone else
        pass
    recorded = status.get("pid_start")
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        current = process_start(pid)
        if current is not None and current != recorded:
            return f"{gone} (pid {pid} now belongs to another process)"
    return None


class Heartbeat:
    """Calls ``beat()`` every ``interval`` seconds in a daemon thread until :meth:`stop`
    or until ``beat`` returns False (the run was lost or finished)."""

    def __init__(self, beat: Callable[[], bool], interval: float) -> None:
        self._beat = beat
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mnistexp-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; returns at once (a beat in progress finishes on its own)."""
        self._stopped.set()

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            if not self._beat():
                return
