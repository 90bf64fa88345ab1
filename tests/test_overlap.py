"""The evaluation's overlap helpers: items read ahead keep their order and their errors, the
metrics run where BLAS allows, and inputs scaled into a reused buffer are the same bytes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from mnistexp.data.scaling import apply_scaling, fit_scaling
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


@pytest.mark.parametrize("name", ["unit", "tutorial", "standardize", "symmetric", "raw"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scaling_into_a_reused_buffer_gives_the_bytes_of_a_fresh_array(name: str, dtype: type):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(50, 784), dtype=np.uint8)
    shift, scale = fit_scaling(name, images)
    fresh = apply_scaling(images, shift, scale, dtype)
    buffer = np.full((80, 784), np.nan, dtype=dtype)  # larger, and dirty
    into = apply_scaling(images, shift, scale, dtype, out=buffer[:50])
    assert into.dtype == fresh.dtype and into.tobytes() == fresh.tobytes()
    assert np.shares_memory(into, buffer)


def test_mapped_keeps_the_order_and_raises_an_error_in_its_place(parallel: bool):
    def slow_on_even(i: int) -> int:
        if i == 5:
            raise ValueError("item 5")
        time.sleep(0.01 if i % 2 == 0 else 0.0)  # out of order when threads run ahead
        return i * i

    got = []
    with pytest.raises(ValueError, match="item 5"):
        for value in overlap.mapped(slow_on_even, range(8), depth=3):
            got.append(value)
    assert got == [0, 1, 4, 9, 16]
    assert list(overlap.mapped(slow_on_even, [0, 1, 2, 3])) == [0, 1, 4, 9]
