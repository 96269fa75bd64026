"""The readers-writer lock that lets real-time tests run alone under pytest-xdist."""

from __future__ import annotations

import asyncio
import fcntl
import re
import threading
from pathlib import Path

from tests.exclusive import alone_in_loop, holding
from tests.schedule import FIRST


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


def test_a_shared_test_goes_alone_for_a_stretch_then_shares_again(tmp_path: Path) -> None:
    order: list[str] = []
    go_alone, leave_alone, r1_done, r2_done, done = (threading.Event() for _ in range(5))

    def stretch() -> None:
        with holding(tmp_path, exclusive=False) as hold:
            order.append("t in")
            go_alone.wait(30)
            with hold.alone():
                order.append("t alone")
                leave_alone.wait(30)
            order.append("t shared")
            done.wait(30)
            order.append("t out")

    def wait_until(seen: str) -> None:
        while seen not in order:
            threading.Event().wait(0.01)

    r1 = threading.Thread(
        target=_hold, args=(tmp_path, "r1"), kwargs={"exclusive": False, "release": r1_done, "order": order}
    )
    r1.start()
    wait_until("r1 in")
    t = threading.Thread(target=stretch)
    t.start()
    wait_until("t in")  # beside r1: shared
    go_alone.set()
    while not _turnstile_taken(tmp_path):
        threading.Event().wait(0.01)
    r2 = threading.Thread(
        target=_hold, args=(tmp_path, "r2"), kwargs={"exclusive": False, "release": r2_done, "order": order}
    )
    r2.start()
    threading.Event().wait(0.3)
    assert order == ["r1 in", "t in"]  # t waits for r1 to finish; r2 waits behind t
    r1_done.set()
    wait_until("t alone")
    threading.Event().wait(0.3)
    assert "r2 in" not in order
    leave_alone.set()
    wait_until("r2 in")  # t is shared again: r2 runs beside it
    wait_until("t shared")
    assert order[:4] == ["r1 in", "t in", "r1 out", "t alone"] and "t out" not in order
    for event in (r2_done, done):
        event.set()
    for thread in (r1, t, r2):
        thread.join(30)


def test_a_coroutine_waits_to_go_alone_while_its_loop_runs(tmp_path: Path) -> None:
    order: list[str] = []
    release = threading.Event()
    other = threading.Thread(
        target=_hold, args=(tmp_path, "r1"), kwargs={"exclusive": False, "release": release, "order": order}
    )
    other.start()
    while "r1 in" not in order:
        threading.Event().wait(0.01)

    async def go_alone() -> int:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(0.5, release.set)  # r1's test ends half a second later
        async with alone_in_loop(hold):
            order.append("t alone")
            waited = ticks
        ticking.cancel()
        return waited

    with holding(tmp_path, exclusive=False) as hold:
        ticks = asyncio.run(go_alone())
    other.join(30)
    assert order == ["r1 in", "r1 out", "t alone"]
    assert ticks >= 10, "the event loop stood still while its test waited to go alone"


#: What a module that runs (part of) a test alone says.
RUNS_ALONE = re.compile(r"mark\.realtime|\.alone\(\)|alone_in_loop\(")


def test_every_module_that_runs_alone_is_handed_out_first() -> None:
    """A ``realtime`` test or an ``alone()`` stretch handed out mid-run waits for the other worker's test then."""
    tests = Path(__file__).parent
    alone = {
        str(path.relative_to(tests.parent))
        for path in tests.rglob("test_*.py")
        if path.name != "test_exclusive.py" and RUNS_ALONE.search(path.read_text())
    }
    assert alone and alone <= set(FIRST), sorted(alone - set(FIRST))
