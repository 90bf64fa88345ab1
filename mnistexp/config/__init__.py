"""The experiment description: strict YAML configs read, overridden and validated against the
registries (``loading``), and the registries of declared objects that every choice is read
from (``registries``).

``from mnistexp.config import load_config`` and the other names of :data:`__all__` are the
stable surface; they are re-exported here from the modules that define them.
"""

from mnistexp.config.loading import *  # noqa: F403  (the stable surface, listed in __all__)
from mnistexp.config.loading import __all__ as __all__
