"""What ``compare --shift`` derived from an experiment's arrays, remembered between calls.

A seed ensemble is recomputed from every pooled run's stored probabilities (6 MB a run at
MNIST's size), so a first ``compare --shift`` over many runs is dominated by reading and
averaging them; the tables drawn from them change only when those files do. So an
experiment's whole contribution to the :class:`~mnistexp.analysis.shiftcompare.ShiftReport`
(its pooled record, rows, risk curves and the warnings its arrays caused) is kept as JSON
under ``<cache root>/compare/``, named by the SHA-256 of everything it was computed from:

- the experiment's name and identity, and the options that change the rows (whether the
  smooth ECE of the ensemble's shifted sets is shown);
- for every run pooled, in order: its folder, seed, and the size, inode, modification and
  change times (ns) of each file read (status, config, metrics, predictions, shift.json and
  its arrays): a rewrite moves the change time even when it keeps the size and the
  modification time;
- :data:`FORMAT` and the mnistexp version.

A file rewritten, replaced or removed changes the name, so the experiment is computed again
with every check of a first call (a replaced array is still caught by its SHA-256). JSON keeps
floats exactly (NaN included), so rows read back are the rows computed. An entry that cannot be
read or written only costs the recomputation.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from mnistexp.analysis.rundirs import RunRecord
from mnistexp.analysis.stats import Summary
from mnistexp.core import atomic

FORMAT = 1
"""Bump when the scoring of a shift row or this layout changes: old entries are ignored."""

READ = (
    "status.json",
    "config.json",
    "config.yaml",
    "metrics.json",
    "predictions.npz",
    "shift.json",
    "shift_predictions.npz",
)
"""The files of a run that its shift rows are computed from."""

Part = dict[str, Any]
"""An experiment's contribution to the report, by field: ``experiments``, ``sets``, ``ood``,
``curves`` (lists of the report's dataclasses) and ``notes`` (lines)."""


def fingerprint(records: Sequence[RunRecord], *context: Any) -> str:
    """The hex SHA-256 naming the rows of ``records`` (the pooled runs, in order) computed
    under ``context`` (JSON-able): what a cache entry is filed under."""
    from mnistexp import __version__

    runs = [[str(r.path), r.seed, [_stat(r.path / name) for name in READ]] for r in records]
    text = json.dumps([FORMAT, __version__, list(context), runs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _stat(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def remembered(key: str, compute: Callable[[], Part], types: dict[str, type]) -> Part:
    """The part filed under ``key``, else ``compute()``'s, filed there for the next call.
    ``types`` maps each list field to its dataclass (``sets`` -> SetRow, ...)."""
    path = _entry(key)
    try:
        return _decode(json.loads(path.read_bytes()), types)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    part = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_file(path, json.dumps(_encode(part)))
    except OSError:
        pass  # an unwritable cache: computed again next time
    return part


def _entry(key: str) -> Path:
    from mnistexp.data.datasets import cache_root

    return cache_root() / "compare" / f"shift-{key[:32]}.json"


def _encode(part: Part) -> dict[str, Any]:
    return {
        field: [_plain(asdict(item)) for item in items] if field != "notes" else list(items)
        for field, items in part.items()
    }


def _plain(value: Any) -> Any:
    """Arrays as lists, Paths as text, the rest as it is (asdict already recursed)."""
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _decode(data: dict[str, Any], types: dict[str, type]) -> Part:
    part: Part = {"notes": [str(line) for line in data["notes"]]}
    for field, cls in types.items():
        part[field] = [cls(**_restore(item)) for item in data[field]]
    return part


def _restore(value: Any) -> Any:
    """Inverse of :func:`_plain` for a row: arrays back, ``values`` as Summaries."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return np.asarray(value["__array__"], dtype=np.float64)
        out = {k: _restore(v) for k, v in value.items()}
        if "values" in out and isinstance(out["values"], dict):
            out["values"] = {k: Summary(**v) for k, v in out["values"].items()}
        return out
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value
