"""What the modules of the API share: the path types, :class:`MissingExtra` and pandas, and
:func:`check_paths`, the check ``train``, ``compare`` and ``sweep`` make before any work."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

PathLike = str | Path
Inputs = PathLike | Sequence[PathLike]


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def check_paths(runs_dir: PathLike | None, data_dir: PathLike | None) -> None:
    """What ``train``, ``compare`` and ``sweep`` check before any work, with their messages:
    the runs folder (``runs_dir`` or ``MNISTEXP_RUNS_DIR``) and the data folder are names the
    filesystem can hold, ``MNISTEXP_LEASE_SECONDS`` is a number."""
    from mnistexp.core.paths import check_names
    from mnistexp.store.liveness import lease_seconds
    from mnistexp.store.runs import runs_root

    runs_root(runs_dir)
    lease_seconds()
    if data_dir is not None:
        check_names(data_dir, "--data-dir")


def _as_list(paths: Inputs | None) -> list[str]:
    if paths is None:
        return []
    if isinstance(paths, str | Path):
        return [str(paths)]
    return [str(p) for p in paths]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise MissingExtra(
            "to_frame() needs pandas, the optional extra 'pandas': "
            "pip install 'mnistexp[pandas]' (to_records() gives the same rows as dicts)"
        ) from None
    return pandas
