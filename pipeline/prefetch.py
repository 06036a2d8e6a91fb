"""Run an iterator in a background thread a few items ahead of its consumer, so decoding and preprocessing
overlap the model's compute (numpy, OpenCV and decord release the GIL while they work)."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

Item = TypeVar("Item")


class _Done:
    pass


def prefetched(make: Callable[[], Iterable[Item]], depth: int = 2, name: str = "vad-prefetch") -> Iterator[Item]:
    """Yield the items of ``make()``, produced in a daemon thread at most ``depth`` items ahead.

    An exception raised by the producer is re-raised in the consumer at the point it happened; closing the
    generator early (break, error in the consumer) stops the producer at its next item."""
    results: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                results.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in make():
                if not put(item):
                    return
            put(_Done())
        except BaseException as exc:  # handed to the consumer, which re-raises it in its own thread
            put(exc)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = results.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=10)
