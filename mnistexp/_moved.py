"""Old import paths of the flat layout (mnistexp 0.1), kept for one release.

``import mnistexp.metrics`` (or ``from mnistexp import metrics``) still works: it warns with a
:class:`DeprecationWarning` naming the new place and returns the module that lives there, the
same object, so attributes set through either name are seen through both. ``mnistexp.data`` and
``mnistexp.config`` are packages now and re-export what those modules offered, without a warning.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

REMOVED_IN = "0.3"
MOVED: dict[str, str] = {
    old: f"mnistexp.{layer}.{old}"
    for layer, olds in {
        "core": "atomic bounded errors limits params paths schema states yamlio",
        "data": "idx scaling",
        "learning": "budget checkpoints losses model objective optim outputs targets",
        "eval": "bootstrap calibration fits metrics recalibration",
        "config": "registries",
        "pipeline": "evaluation splits trainer",
        "store": "environment liveness runs",
        "orchestration": "experiment planning sweep workers",
        "analysis": "columns compare htmlpage plots report rundirs stats",
    }.items()
    for old in olds.split()
}
"""Old module name under ``mnistexp`` -> the module's path in the layered layout."""


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``mnistexp.<old>`` for every :data:`MOVED` name and hands back the moved module."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, old = fullname.partition(".")
        if package != "mnistexp" or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name.partition(".")[2]]
        warnings.warn(
            f"{spec.name} moved to {new}; the old path goes away in mnistexp {REMOVED_IN}",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: :meth:`create_module` returned the moved module, already imported."""


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (importing mnistexp calls this)."""
    if not any(isinstance(f, MovedModules) for f in sys.meta_path):
        sys.meta_path.append(MovedModules())
