"""Spreading the evaluation beyond the test set over the machine's cores, without changing a bit.

:func:`~mnistexp.pipeline.shifted.evaluate_shifted` has three kinds of work per set: reading
it from the cache (CRC-checked), the model's forward pass (BLAS), and the metrics (sorts,
FFTs and ufuncs, which release the GIL). The calling thread keeps the BLAS work, since a
product's bits depend on the number of BLAS threads and only one thread may set it; a loader
thread reads the next sets ahead (:func:`prefetched`); once every forward pass is done (a
thread competing with a two-thread BLAS product slows it twofold), a pool computes the
metrics (:func:`metric_pool`). ``compare --shift`` reads its runs the same way
(:func:`mapped`). Every metric is a pure function of its set, so the numbers are those of a
serial evaluation, which is what runs when BLAS is held to one thread (a sweep's workers,
which share the cores).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

T = TypeVar("T")
U = TypeVar("U")

METRIC_THREADS = 2
"""Threads of :func:`metric_pool` and :func:`mapped`: the project's machines have two cores."""


@functools.cache
def _blas() -> Any:
    """The BLAS libraries of this process, found once (a lookup scans the loaded libraries,
    about 4 ms, and a limit is set and lifted for every set)."""
    import numpy  # noqa: F401  (loads numpy's BLAS, so that the scan finds it)

    return ThreadpoolController().select(user_api="blas")


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context in which BLAS uses one thread: small products, as in evaluation.py."""
    return _blas().limit(limits=1)


def parallel() -> bool:
    """Whether BLAS may use more than one thread here, i.e. the cores are this process's."""
    return min((pool["num_threads"] for pool in _blas().info()), default=1) > 1


class Inline(Executor):
    """An executor that runs each call at once, on the calling thread."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        done: Future[T] = Future()
        done.set_result(fn(*args, **kwargs))
        return done


def metric_pool() -> Executor:
    """Where the metrics run: :data:`METRIC_THREADS` threads when :func:`parallel`, else at
    once on the calling thread."""
    return ThreadPoolExecutor(max_workers=METRIC_THREADS) if parallel() else Inline()


def mapped(fn: Callable[[T], U], items: Iterable[T], depth: int = 4) -> Iterator[U]:
    """``fn`` of each of ``items``, in order, with up to ``depth`` calls running ahead on
    :data:`METRIC_THREADS` threads when :func:`parallel` (else one after another here). An
    exception raised by a call is raised here, in its place."""
    if not parallel():
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=METRIC_THREADS) as pool:
        pending: collections.deque[Future[U]] = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items`` in order, each made on a loader thread up to ``depth`` ahead of its use
    (made on the calling thread unless :func:`parallel`). An exception raised making an item
    is raised here, in its place."""
    if not parallel():
        yield from items
        return
    end: Any = object()
    with ThreadPoolExecutor(max_workers=1) as loader:  # one thread: next() is never concurrent
        pending = collections.deque(loader.submit(next, items, end) for _ in range(depth))
        while (item := pending.popleft().result()) is not end:
            pending.append(loader.submit(next, items, end))
            yield item
