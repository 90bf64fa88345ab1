"""``load_runs``: run folders read as ``mnistexp compare`` reads them, into :class:`Runs`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from mnistexp.api.common import Inputs, PathLike, _as_list, _pandas

if TYPE_CHECKING:
    from mnistexp.analysis.rundirs import RunRecord


class Runs(Sequence["RunRecord"]):
    """Run records as ``mnistexp compare`` reads them, a read-only list.

    Each item is a :class:`~mnistexp.analysis.rundirs.RunRecord`: ``path``, ``name``,
    ``seed``, ``chash`` (the config hash), ``state`` (completed or diverged), ``config``
    (flattened, dotted keys) and ``values`` (test metrics by their ``--metrics`` names, raw
    fractions, NaN where absent). Folders that could not be used are left out, each with one
    line in :attr:`warnings`.
    """

    def __init__(self, records: Sequence[RunRecord], warnings: Sequence[str] = ()) -> None:
        self._records = list(records)
        self.warnings: list[str] = list(warnings)
        """One line per folder left out or damaged, as compare prints them."""

    @overload
    def __getitem__(self, index: int) -> RunRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Runs: ...

    def __getitem__(self, index: int | slice) -> RunRecord | Runs:
        if isinstance(index, slice):
            return Runs(self._records[index], self.warnings)
        return self._records[index]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self._records)

    def __repr__(self) -> str:
        return f"<Runs: {len(self)} runs, {len(self.warnings)} warnings>"

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per run: ``run_dir``, ``name``, ``seed``, ``state``, ``config_hash``,
        every metric (raw fractions; a run's bootstrap bounds as ``<metric>_boot_low`` and
        ``_boot_high``; NaN where absent) and every config key, dotted.

        Example:
            ```python
            rows = load_runs("runs").to_records()
            best = max(rows, key=lambda row: row["accuracy"])
            ```
        """
        return [_run_row(r) for r in self._records]

    def to_frame(self) -> Any:
        """The rows of :meth:`to_records` as a pandas DataFrame.

        Raises:
            MissingExtra: pandas is not installed (an ImportError naming the extra).

        Example:
            ```python
            frame = load_runs("runs/baseline-*").to_frame()
            frame.groupby("name")["ece"].describe()
            ```
        """
        return _pandas().DataFrame.from_records(self.to_records())


def _run_row(record: RunRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_dir": str(record.path),
        "name": record.name,
        "seed": record.seed,
        "state": record.state,
        "config_hash": record.chash,
    }
    row |= {key.replace(":", "_"): value for key, value in record.values.items()}
    row |= {key: value for key, value in record.config.items() if key not in row}
    return row


def load_runs(paths: Inputs | None = None, *, runs_dir: PathLike | None = None) -> Runs:
    """Read run folders as ``mnistexp compare`` does: completed and diverged runs.

    Args:
        paths: run folders, globs (``"runs/baseline-*"``) or runs roots, one or a list;
            None: every run under the runs root.
        runs_dir: the runs root for ``paths=None`` (default: ``MNISTEXP_RUNS_DIR``, else
            ``./runs``).

    Returns:
        The runs, with one warning line per folder left out.

    Raises:
        UsageError: a path that names no run folder, or an empty runs root (the CLI's lines).

    Example:
        ```python
        from mnistexp import load_runs

        runs = load_runs(["runs/baseline-*", "runs/label_smoothing-*"])
        len(runs), runs.warnings
        runs.to_frame()[["name", "seed", "accuracy", "ece"]]
        ```
    """
    from mnistexp.analysis.rundirs import collect_folders
    from mnistexp.analysis.rundirs import load_runs as read_folders
    from mnistexp.store.runs import runs_root

    folders = collect_folders(_as_list(paths), runs_root(runs_dir))
    records, notes = read_folders(folders)
    return Runs(records, notes)
