"""Several sources read at once, their items taken one source after another.

The room pass sums every track into the mix, and reading a track is mostly
decoding it (PyAV decodes outside the GIL) and, in a worker, downloading
its segments: the seven-speaker bench space's seven tracks took 1.8 s one
after another, 1.1 s two at a time. The mix must still be summed in one
order, track after track: float32 sums taken in another order differ in
their last bits, and Whisper's words may differ with them, from one run of
the same room to the next.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import TypeVar, cast

T = TypeVar("T")

_POLL = 0.1
"""Seconds a reader waits on a full queue before it looks whether it is still wanted."""

_Queue = queue.Queue[tuple[bool, object]]
"""``(True, item)`` per item, then ``(False, None)`` at the end or ``(False, error)``."""


def read_ahead(
    sources: Sequence[Iterable[T]], *, readers: int, ahead: int = 64
) -> Generator[tuple[int, T], None, None]:
    """``(source's index, item)``: every item of the first source, then of the second, and so on.

    The source being taken and the ``readers - 1`` after it are read at once,
    each at most ``ahead`` items ahead of what was taken: memory is up to
    ``readers * (ahead + 1)`` items. An error reading a source is raised
    where its items would have come. Close the iterator when stopping early
    (``contextlib.closing``): that stops the readers and closes their sources.
    """
    if readers < 1 or ahead < 1:
        raise ValueError(f"read_ahead needs a reader and room for an item (readers={readers}, ahead={ahead})")
    queues: list[_Queue] = [queue.Queue(maxsize=ahead) for _ in sources]
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(i: int) -> None:
        if i < len(sources):
            # A daemon: a reader left behind by an iterator never closed must not hold the process open.
            thread = threading.Thread(target=_read, args=(sources[i], queues[i], stop), daemon=True)
            thread.start()
            threads.append(thread)

    try:
        for i in range(readers):
            start(i)
        for i, taken in enumerate(queues):
            while True:
                more, item = taken.get()
                if not more:
                    if isinstance(item, BaseException):
                        raise item
                    break
                yield i, cast(T, item)
            start(i + readers)
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def _read(source: Iterable[object], into: _Queue, stop: threading.Event) -> None:
    """Put ``source``'s items into ``into`` until it ends or ``stop`` is set, then close it."""
    items: Iterator[object] | None = None
    try:
        items = iter(source)
        for item in items:
            if not _put(into, (True, item), stop):
                return
        _put(into, (False, None), stop)
    except BaseException as e:  # raised to the taker, in its thread
        _put(into, (False, e), stop)
    finally:
        # A source stopped early lets go of what it holds now (a track's
        # temporary directory), not whenever it is collected.
        close = getattr(items, "close", None)
        if close is not None:
            close()


def _put(into: _Queue, item: tuple[bool, object], stop: threading.Event) -> bool:
    """Put ``item``, waiting for room unless ``stop`` is set; whether it was put."""
    while not stop.is_set():
        try:
            into.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False
