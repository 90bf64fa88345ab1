"""The Python API: train runs, load run folders and compare experiments from a notebook.

Three functions the command line is built on: ``mnistexp train`` and ``mnistexp compare`` run
their steps (:func:`run_config` and :func:`train_run`; :func:`gather_runs` and
:func:`build_comparison`, not in ``__all__``) between their own checks and output, so the
validation and the one-line messages are the same (every bad input is a
:class:`~mnistexp.core.errors.UsageError` subclass, whose text is what ``mnistexp`` prints
after ``Error:``):

- :func:`train` is ``mnistexp train``: one run, one folder, a :class:`RunResult`;
- :func:`load_runs` reads run folders into :class:`Runs`, one record per run;
- :func:`compare` is ``mnistexp compare``: a :class:`Comparison` holding the very report the
  command renders, so ``compare(...).render("markdown")`` is the command's output.

``import mnistexp`` stays cheap (no numpy): these names are re-exported lazily by the
package, and the heavy modules are imported inside the functions, as the CLI does.
``mnistexp.compare`` is this module's :func:`compare`; the deprecated flat path of mnistexp
0.1, ``import mnistexp.compare`` (now :mod:`mnistexp.analysis.compare`), still imports that
module with a warning and, as Python binds an imported submodule to its package, rebinds
``mnistexp.compare`` to it until the path goes away in 0.3. ``mnistexp.api.compare`` is
never rebound.

DataFrames need pandas, the optional extra ``pandas`` (``pip install 'mnistexp[pandas]'``);
without it ``to_records()`` gives the same rows as a list of dicts.
"""

# One module per job: training (train and its steps), loading (load_runs, Runs), comparison
# (Comparison and its views), comparing (compare and its steps), common (what they share).
# Every name api.py offered is offered here. __all__ is the documented API; the ``X as X``
# names are the steps and constants the commands use as ``api.X``, looked up here at each
# call, so patching ``mnistexp.api.gather_runs`` changes what ``mnistexp compare`` runs
# (``compare`` itself calls the steps of its own module).
from mnistexp.api.common import Inputs as Inputs
from mnistexp.api.common import MissingExtra
from mnistexp.api.common import PathLike as PathLike
from mnistexp.api.common import check_paths as check_paths
from mnistexp.api.comparing import CONFIG_SUFFIXES as CONFIG_SUFFIXES
from mnistexp.api.comparing import SET_WITHOUT_CONFIGS as SET_WITHOUT_CONFIGS
from mnistexp.api.comparing import build_comparison as build_comparison
from mnistexp.api.comparing import compare
from mnistexp.api.comparing import gather_runs as gather_runs
from mnistexp.api.comparison import FORMATS as FORMATS
from mnistexp.api.comparison import Comparison
from mnistexp.api.loading import Runs, load_runs
from mnistexp.api.training import ELSEWHERE as ELSEWHERE
from mnistexp.api.training import ELSEWHERE_RETRAINED as ELSEWHERE_RETRAINED
from mnistexp.api.training import RunResult, train
from mnistexp.api.training import run_config as run_config
from mnistexp.api.training import skip_hint as skip_hint
from mnistexp.api.training import train_run as train_run

# The documented API, in the order of its reference page (docs/site/reference/api.md sorts
# by __all__): training, then loading runs, then comparing.
__all__ = [  # noqa: RUF022
    "MissingExtra",
    "RunResult",
    "train",
    "Runs",
    "load_runs",
    "Comparison",
    "compare",
]
