"""Memory a run will need, estimated from its config before anything is claimed or trained.

A model too large for this machine is refused with one :class:`ConfigError` line (exit code 2)
before a run folder is claimed, instead of a MemoryError (or the kernel's OOM killer) minutes later,
with a folder left behind. The estimate counts what :mod:`mnistexp.learning.model`,
:mod:`mnistexp.learning.optim` and :mod:`mnistexp.pipeline.evaluation` allocate: the scaled images,
the parameters with their gradients, optimiser state and checkpoint copy, one batch's buffers and
one evaluation chunk's activations. It errs high by design; it is a guard, not a profiler.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

from mnistexp.core.errors import ConfigError
from mnistexp.core.schema import ExperimentConfig

EVAL_CHUNK = 8192  # rows per forward pass in evaluation (mnistexp.learning.model.logits)
_OPTIMIZER_SLOTS = {"sgd": 1, "adam": 2}  # velocity (momentum) or two moments


def estimate_bytes(cfg: ExperimentConfig, n_images: int, n_inputs: int, n_classes: int) -> int:
    """Bytes a run of ``cfg`` on ``n_images`` images of ``n_inputs`` pixels allocates at most."""
    itemsize = 4 if cfg.train.dtype == "float32" else 8
    widths = [n_inputs, *cfg.model.hidden, n_classes]
    params = sum(a * b + b for a, b in itertools.pairwise(widths))
    slots = _OPTIMIZER_SLOTS.get(cfg.train.optimizer, 2)
    copies = 2 + slots + (1 if cfg.train.checkpoint_every else 0)  # params, grads, state, ckpt
    batch = cfg.train.batch_size * sum(widths) * 2  # activations and deltas of one batch
    chunk = min(EVAL_CHUNK, n_images) * max(widths) * 3  # a chunk's layer in, out, temporary
    images = n_images * n_inputs * (itemsize + 1)  # scaled floats beside the uint8 originals
    return (params * copies + batch + chunk) * itemsize + images


def available_bytes() -> int | None:
    """Memory this process may use: the smallest of the machine's available memory, the
    cgroup limit and the address-space limit; None where none of them can be read."""
    found = [v for v in (_meminfo_available(), _cgroup_limit(), _rlimit_as()) if v]
    return min(found) if found else None


def check_fits(cfg: ExperimentConfig, n_images: int, n_inputs: int, n_classes: int) -> None:
    """ConfigError if ``cfg`` would need more memory than :func:`available_bytes`."""
    need = estimate_bytes(cfg, n_images, n_inputs, n_classes)
    have = available_bytes()
    if have is not None and need > have:
        raise ConfigError(
            f"model.hidden = {list(cfg.model.hidden)} needs about {_gib(need)} of memory "
            f"(parameters, gradients, optimiser state, activations), more than the "
            f"{_gib(have)} available; use smaller layers or a smaller train.batch_size"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _meminfo_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return _physical()
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else _physical()


def _physical() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def _rlimit_as() -> int | None:
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft if soft != resource.RLIM_INFINITY and soft > 0 else None
