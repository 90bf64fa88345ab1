"""Where a comparison came from: the command, when, which mnistexp, which data and runs.

The HTML report shows it in a section of its own and the LaTeX table carries it as ``%``
comment lines above the table, so a number in a paper can be traced to its run folders.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from mnistexp.core.errors import RunError
from mnistexp.core.yamlio import one_line


@dataclass(frozen=True)
class Provenance:
    """What produced a report (all text, one line each)."""

    command: str
    date: str  # UTC, to the minute
    version: str  # mnistexp's
    commit: str | None  # of the checkout mnistexp ran from, None outside git
    data: dict[str, list[str]] = field(default_factory=dict)  # data file -> sha256s seen
    runs: dict[str, list[str]] = field(default_factory=dict)  # row label -> run folders


def collect(command: str, runs: dict[str, list[Path]]) -> Provenance:
    """The provenance of a report whose rows (label -> run folders) are ``runs``: ``command``
    as typed, now, the version and commit, the data checksums the runs' env.json recorded."""
    from mnistexp import __version__
    from mnistexp.store.environment import git_commit

    return Provenance(
        one_line(command),
        dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        __version__,
        git_commit(),
        data_checksums([path for paths in runs.values() for path in paths]),
        {label: [one_line(p.name) for p in paths] for label, paths in runs.items()},
    )


def data_checksums(folders: list[Path]) -> dict[str, list[str]]:
    """Data file -> the distinct SHA-256s in the runs' env.json (one when all runs trained on
    the same files); runs without a readable env.json are left out."""
    from mnistexp.store import runs

    seen: dict[str, list[str]] = {}
    for folder in folders:
        try:
            sums = runs.read_json(folder / "env.json")["data"]["sha256"]
        except (RunError, KeyError, TypeError):
            continue
        for name, digest in sums.items() if isinstance(sums, dict) else ():
            found = seen.setdefault(one_line(str(name)), [])
            if one_line(str(digest)) not in found:
                found.append(one_line(str(digest)))
    return seen


def lines(p: Provenance) -> list[str]:
    """The provenance as plain lines (``label: text``), for a LaTeX comment or a note."""
    out = [
        f"made by mnistexp {p.version}" + (f" (commit {p.commit})" if p.commit else ""),
        f"on {p.date}: {p.command}",
    ]
    out += [f"data {name}: sha256 {', '.join(sums)}" for name, sums in p.data.items()]
    out += [f"runs of {label}: {' '.join(folders)}" for label, folders in p.runs.items()]
    return out
