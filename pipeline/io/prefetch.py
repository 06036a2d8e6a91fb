"""Run an iterator in a background thread a few items ahead of its consumer, so decoding and preprocessing
overlap the model's compute (numpy, OpenCV and decord release the GIL while they work)."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, Iterable, Iterator, TypeVar

Item = TypeVar("Item")


class _Done:
    pass


class Prefetcher(Generic[Item]):
    """The items of ``make()``, produced in a daemon thread that starts at once and runs at most ``depth`` items
    ahead; iterate it to consume them, ``close()`` it to stop the producer (and close its iterator) early.

    An exception raised by the producer is re-raised in the consumer at the point it happened."""

    def __init__(self, make: Callable[[], Iterable[Item]], depth: int = 2, name: str = "vad-prefetch"):
        self._results: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._finished = False
        self._worker = threading.Thread(target=self._produce, args=(make,), name=name, daemon=True)
        self._worker.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._results.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, make: Callable[[], Iterable[Item]]) -> None:
        items = None
        try:
            items = iter(make())
            for item in items:
                if not self._put(item):
                    return
            self._put(_Done())
        except BaseException as exc:  # handed to the consumer, which re-raises it in its own thread
            self._put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's cleanup (closing its reader) runs here, in the producer's thread

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        if self._finished:
            raise StopIteration
        item = self._results.get()
        if isinstance(item, _Done):
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        return item

    def close(self) -> None:
        self._finished = True
        self._stop.set()
        self._worker.join(timeout=10)


def prefetched(make: Callable[[], Iterable[Item]], depth: int = 2, name: str = "vad-prefetch") -> Iterator[Item]:
    """Yield the items of ``make()``, produced in a daemon thread at most ``depth`` items ahead (a
    :class:`Prefetcher` that starts when first advanced; closing the generator early stops the producer)."""
    prefetcher = Prefetcher(make, depth, name)
    try:
        yield from prefetcher
    finally:
        prefetcher.close()
