"""mnistexp: which target encoding, loss and input scaling should an MNIST MLP use?

The package is layered (README "Architecture"; the layers contract in pyproject.toml is checked
by ``lint-imports``), each layer importing only those below it:

    cli                      the Click commands, a thin layer over the API
    api                      the Python API for notebooks and scripts
    analysis | orchestration reading and comparing runs | running experiments and sweeps
    store                    the run-folder contract
    pipeline                 one experiment in memory: splits, training loop, evaluation
    config                   configs, their identity, the registries
    eval                     metrics, calibration, recalibration, bootstrap
    learning | data          outputs, losses, targets, model, optimisers | IDX files, datasets
    core                     errors, bounded reads, atomic writes, paths, YAML, schema, states

Importing the package is cheap: numpy and friends are imported by the modules that need them,
never here. The Python API (:mod:`mnistexp.api`: ``train``, ``load_runs``, ``compare``) is
re-exported on first use, so ``from mnistexp import train`` works without paying for it here.
Old flat import paths (``mnistexp.metrics``) still work for one release, with a
DeprecationWarning (:mod:`mnistexp._moved`).
"""

from __future__ import annotations

import importlib
from typing import Any

from mnistexp import _moved

__version__ = "0.1.0"
__all__ = [
    "Comparison",
    "MissingExtra",
    "RunResult",
    "Runs",
    "__version__",
    "compare",
    "load_runs",
    "train",
]

API = ("Comparison", "MissingExtra", "RunResult", "Runs", "compare", "load_runs", "train")
"""Names of :mod:`mnistexp.api` that ``mnistexp`` offers, imported on first use."""

_moved.install()


def __getattr__(name: str) -> Any:
    """``mnistexp.train`` and the other :data:`API` names, from :mod:`mnistexp.api`.

    Imported by name, not by an import statement: every layer may read ``__version__`` from
    this package, and an import statement here (even under TYPE_CHECKING) would count for
    lint-imports as each of them importing the top layer. Type checkers see these names as
    Any; ``from mnistexp.api import train`` is the typed spelling.
    """
    if name in API:
        return getattr(importlib.import_module("mnistexp.api"), name)
    raise AttributeError(f"module 'mnistexp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API})
