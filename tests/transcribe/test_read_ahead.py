"""Sources read side by side, their items taken in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from transcribe.read_ahead import read_ahead

WAIT = 30.0
"""Seconds a test waits on another thread: far more than it takes on a loaded machine."""


def test_items_come_source_after_source_while_the_next_is_already_read() -> None:
    started = [threading.Event() for _ in range(3)]

    def source(k: int, items: str) -> Iterator[str]:
        started[k].set()
        yield items[0]
        if k == 0:
            # Only read side by side can the second source have started before the first ends.
            assert started[1].wait(WAIT), "the second source was not read beside the first"
            # ...and no more of them than the readers: the third waits for the first to be taken.
            assert not started[2].is_set(), "a third source was read beside two readers"
        yield from items[1:]

    assert list(read_ahead([source(0, "ab"), source(1, "cd"), source(2, "e")], readers=2)) == [
        (0, "a"),
        (0, "b"),
        (1, "c"),
        (1, "d"),
        (2, "e"),
    ]


@pytest.mark.parametrize("readers", [1, 2])
def test_an_error_reading_a_source_comes_where_its_items_would(readers: int) -> None:
    def broken() -> Iterator[str]:
        yield "c"
        raise OSError("segment 3: no such key")

    taken: list[tuple[int, str]] = []
    with pytest.raises(OSError, match="segment 3"):
        for item in read_ahead([iter("ab"), broken(), iter("d")], readers=readers):
            taken.append(item)
    assert taken == [(0, "a"), (0, "b"), (1, "c")]
    with pytest.raises(TypeError):  # not even iterable: raised all the same, not waited for
        list(read_ahead([iter("ab"), 5], readers=readers))  # type: ignore[list-item]


def test_stopping_early_stops_the_readers_and_closes_their_sources() -> None:
    started = [threading.Event() for _ in range(2)]
    stopped = [threading.Event() for _ in range(2)]

    def endless(k: int) -> Iterator[int]:
        started[k].set()
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            stopped[k].set()

    # Held here, the sources are closed by their readers or not at all (not when collected).
    sources = [endless(0), endless(1), iter(range(3))]
    items = read_ahead(sources, readers=2, ahead=2)
    assert next(items) == (0, 0)
    assert started[1].wait(WAIT)
    closing = threading.Thread(target=items.close)  # returns once the readers have stopped
    closing.start()
    closing.join(WAIT)
    assert not closing.is_alive(), "a reader was left blocked on its full queue"
    assert all(s.is_set() for s in stopped), "a source was not closed"


def test_nothing_to_read_with_or_room_for_is_refused() -> None:
    with pytest.raises(ValueError, match="readers=0"):
        next(read_ahead([iter("a")], readers=0))
    with pytest.raises(ValueError, match="ahead=0"):
        next(read_ahead([iter("a")], readers=2, ahead=0))
