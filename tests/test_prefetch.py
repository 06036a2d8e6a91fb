"""The background producer every stage reads its frames through: order, bounded read-ahead, errors where they
happened, and early stops that release the producer's resources (a video reader)."""

from __future__ import annotations

import threading
import time

import pytest

from vad_pipeline.io.prefetch import Prefetcher, prefetched


def _wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_items_arrive_in_order_and_the_producer_starts_at_once() -> None:
    produced: list[int] = []

    def make():
        for i in range(10):
            produced.append(i)
            yield i

    prefetcher = Prefetcher(make, depth=3)
    # started before anything is consumed, and held at depth (3 queued + 1 waiting to be put)
    assert _wait_for(lambda: len(produced) == 4)
    time.sleep(0.2)
    assert len(produced) == 4
    assert list(prefetcher) == list(range(10))


def test_a_producer_error_is_raised_in_the_consumer_after_the_items_before_it() -> None:
    def make():
        yield 1
        yield 2
        raise ValueError("frame 3 is corrupt")

    seen = []
    with pytest.raises(ValueError, match="frame 3"):
        for item in prefetched(make, depth=2):
            seen.append(item)
    assert seen == [1, 2]


def test_closing_early_stops_the_producer_and_runs_its_cleanup() -> None:
    closed = threading.Event()

    def make():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()  # e.g. reader.close()

    prefetcher = Prefetcher(make, depth=2)
    assert next(prefetcher) == 0
    prefetcher.close()
    assert closed.wait(5.0)
    with pytest.raises(StopIteration):
        next(prefetcher)


def test_a_stream_read_ahead_and_never_read_is_released() -> None:
    closed = threading.Event()

    def make():
        try:
            yield from range(100)
        finally:
            closed.set()

    prefetcher = Prefetcher(make, depth=1)
    prefetcher.close()
    assert closed.wait(5.0)
