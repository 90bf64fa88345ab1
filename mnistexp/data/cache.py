"""Arrays derived deterministically from the data, kept per machine in the user cache.

A shifted test set, the UCI digits in MNIST's format and the out-of-distribution sets are the
same bytes every time they are made from the same inputs, so each is made once and kept under
``<cache root>/<kind>/`` (the data cache's root). An entry is used only when its seal (the
key it was made for, its shape, dtype and CRC-32) matches; anything else (absent, truncated,
replaced, another key) is made again and rewritten. A cache that cannot be written only makes
the next call slower. The key names everything the bytes depend on, with :data:`FORMAT`.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable

import numpy as np

from mnistexp.core import atomic

FORMAT = 1
"""Bump when any cached array's recipe changes the bytes it gives: old entries are ignored."""


def cached_array(kind: str, label: str, key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    """The array ``make()`` gives for ``key``, from ``<cache root>/<kind>/<label>-<digest>.npy``
    when a sealed entry for this key is there, else made and stored. Read-only."""
    from mnistexp.data.datasets import cache_root

    full_key = f"{FORMAT}|{kind}|{key}"
    digest = hashlib.sha256(full_key.encode()).hexdigest()[:24]
    entry = cache_root() / kind / f"{label}-{digest}.npy"
    seal_path = entry.with_suffix(".json")
    try:
        array = np.load(entry, allow_pickle=False)
        if json.loads(seal_path.read_bytes()) == _seal(full_key, array):
            array.flags.writeable = False
            return array
    except (OSError, ValueError, EOFError):
        pass
    array = make()
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic.AtomicFile(entry) as out:
            np.save(out, array, allow_pickle=False)
        atomic.write_file(seal_path, json.dumps(_seal(full_key, array)))
    except OSError:
        pass  # an unwritable cache: made again next time
    array.flags.writeable = False
    return array


def _seal(key: str, array: np.ndarray) -> dict[str, object]:
    return {
        "key": key,
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "crc32": zlib.crc32(np.ascontiguousarray(array).data),
    }
