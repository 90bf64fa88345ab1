"""The experiment description: strict YAML configs read, overridden and validated against the
registries (``loading``), a run's identity and its hash (``identity``), and the registries of
declared objects that every choice is read from (``registries``).

``from mnistexp.config import load_config`` and the other names of :data:`__all__` are the
stable surface; they are re-exported here from the modules that define them.
"""

from mnistexp.config import identity as _identity
from mnistexp.config import loading as _loading
from mnistexp.config.identity import *  # noqa: F403  (listed in its __all__)
from mnistexp.config.loading import *  # noqa: F403  (listed in its __all__)

__all__ = sorted([*_loading.__all__, *_identity.__all__])
