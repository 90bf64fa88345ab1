"""The data layer: IDX files (``idx``), the dataset registry with finding, downloading,
verifying and caching (``datasets``), input scaling (``scaling``), and the image sets for
trust beyond the test set: shifted test sets (``shifts``), the UCI digits (``digits``) and
out-of-distribution sets (``ood``), the last two framed like MNIST (``framing``).

``from mnistexp import data`` keeps its old meaning: the dataset functions (``data.load``,
``data.verify``, ...) are re-exported here from :mod:`mnistexp.data.datasets`.
"""

from mnistexp.data.datasets import *  # noqa: F403  (the stable surface, listed in __all__)
from mnistexp.data.datasets import __all__ as __all__
