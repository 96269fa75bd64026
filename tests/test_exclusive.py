"""The readers-writer lock that lets real-time tests run alone under pytest-xdist."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

from tests.exclusive import holding


def _hold(directory: Path, name: str, *, exclusive: bool, release: threading.Event, order: list[str]) -> None:
    with holding(directory, exclusive=exclusive):
        order.append(f"{name} in")
        release.wait(30)
        order.append(f"{name} out")


def _turnstile_taken(directory: Path) -> bool:
    with (directory / "turnstile").open("ab") as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(probe, fcntl.LOCK_UN)
        return False


def test_a_writer_waits_for_readers_and_no_new_reader_overtakes_it(tmp_path: Path) -> None:
    order: list[str] = []
    releases = {name: threading.Event() for name in ("r1", "w", "r2")}

    def start(name: str, exclusive: bool) -> threading.Thread:
        thread = threading.Thread(
            target=_hold,
            args=(tmp_path, name),
            kwargs={"exclusive": exclusive, "release": releases[name], "order": order},
        )
        thread.start()
        return thread

    threads = [start("r1", False)]
    while "r1 in" not in order:
        threading.Event().wait(0.01)
    threads.append(start("w", True))
    while not _turnstile_taken(tmp_path):
        threading.Event().wait(0.01)
    threads.append(start("r2", False))
    # r2 would get in beside r1 at once without the turnstile; give it the chance.
    threading.Event().wait(0.3)
    assert order == ["r1 in"]
    for name in ("r1", "w", "r2"):
        releases[name].set()
    for thread in threads:
        thread.join(30)
    assert order == ["r1 in", "r1 out", "w in", "w out", "r2 in", "r2 out"]
