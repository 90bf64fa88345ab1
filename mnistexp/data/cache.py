"""Arrays derived deterministically from the data, kept per machine in the user cache.

A shifted test set, the UCI digits in MNIST's format and the out-of-distribution sets are the
same bytes every time they are made from the same inputs, so each is made once and kept under
``<cache root>/<kind>/`` (the data cache's root). An entry is used only when its seal (the
key it was made for, its shape, dtype and CRC-32) matches; anything else (absent, truncated,
replaced, another key) is made again and rewritten. A cache that cannot be written only makes
the next call slower. The key names everything the bytes depend on, with :data:`FORMAT`.
An entry may also record a digest of its array made with it (:func:`cached_with_digest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnistexp.core import atomic

FORMAT = 1
"""Bump when any cached array's recipe changes the bytes it gives: old entries are ignored."""


def cached_array(kind: str, label: str, key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    """The array ``make()`` gives for ``key``, from ``<cache root>/<kind>/<label>-<digest>.npy``
    when a sealed entry for this key is there, else made and stored. Read-only."""
    return _cached(kind, label, key, make, None)[0]


def cached_with_digest(
    kind: str,
    label: str,
    key: str,
    make: Callable[[], np.ndarray],
    digest: Callable[[np.ndarray], str],
) -> tuple[np.ndarray, str]:
    """:func:`cached_array`, and ``digest(array)`` (e.g. a SHA-256 of the bytes and what they
    mean) as its seal recorded it when the entry was made: the CRC-32 that checks the entry
    also vouches for the digest, so a reader does not hash the array again. ``key`` must name
    everything the digest depends on."""
    array, recorded = _cached(kind, label, key, make, digest)
    assert recorded is not None  # a digest function was given
    return array, recorded


def _cached(
    kind: str,
    label: str,
    key: str,
    make: Callable[[], np.ndarray],
    digest: Callable[[np.ndarray], str] | None,
) -> tuple[np.ndarray, str | None]:
    from mnistexp.data.datasets import cache_root

    full_key = f"{FORMAT}|{kind}|{key}"
    name = hashlib.sha256(full_key.encode()).hexdigest()[:24]
    entry = cache_root() / kind / f"{label}-{name}.npy"
    seal_path = entry.with_suffix(".json")
    try:
        array = np.load(entry, allow_pickle=False)
        seal = json.loads(seal_path.read_bytes())
        recorded = seal.pop("digest", None) if isinstance(seal, dict) else None
        if seal == _seal(full_key, array):
            array.flags.writeable = False
            if digest is None or isinstance(recorded, str):
                return array, recorded
            return array, _record_digest(seal_path, seal, digest(array))  # sealed before
    except (OSError, ValueError, EOFError):
        pass
    array = make()
    recorded = None if digest is None else digest(array)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic.AtomicFile(entry) as out:
            np.save(out, array, allow_pickle=False)
        extra = {} if recorded is None else {"digest": recorded}
        atomic.write_file(seal_path, json.dumps(_seal(full_key, array) | extra))
    except OSError:
        pass  # an unwritable cache: made again next time
    array.flags.writeable = False
    return array, recorded


def _record_digest(seal_path: Path, seal: dict[str, object], recorded: str) -> str:
    """Add ``recorded`` to the valid seal at ``seal_path`` of an entry made before digests
    were kept (best effort) and return it."""
    with contextlib.suppress(OSError):
        atomic.write_file(seal_path, json.dumps({**seal, "digest": recorded}))
    return recorded


def _seal(key: str, array: np.ndarray) -> dict[str, object]:
    return {
        "key": key,
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "crc32": zlib.crc32(np.ascontiguousarray(array).data),
    }
