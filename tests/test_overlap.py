"""The evaluation's overlap helpers: items read ahead keep their order and their errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from mnistexp.pipeline import overlap


@pytest.fixture(params=[False, True], ids=["serial", "parallel"])
def parallel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(overlap, "parallel", lambda: request.param)
    return bool(request.param)


def test_prefetched_keeps_the_order_and_reads_on_a_loader_thread_when_parallel(parallel: bool):
    made_on = []

    def items() -> Iterator[int]:
        for i in range(7):
            made_on.append(threading.current_thread() is threading.main_thread())
            yield i

    assert list(overlap.prefetched(items(), depth=3)) == list(range(7))
    assert made_on == [not parallel] * 7


def test_an_error_making_an_item_is_raised_in_its_place(parallel: bool):
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("set 2 is corrupt")

    seen = []
    with pytest.raises(ValueError, match="set 2 is corrupt"):
        for item in overlap.prefetched(items()):
            seen.append(item)
    assert seen == [1]


def test_the_metric_pool_runs_inline_when_blas_is_held_to_one_thread(parallel: bool):
    with overlap.metric_pool() as pool:
        job = pool.submit(threading.current_thread)
        assert (job.result() is threading.main_thread()) is not parallel


def test_parallel_follows_the_blas_threads():
    with overlap.one_blas_thread():
        assert not overlap.parallel()
