"""A clock the test moves by hand: time passes when the test says, not when a loaded machine gets round to it."""

from __future__ import annotations


class ManualClock:
    """A monotonic clock (or CPU-time source) that reads ``now`` until the test moves it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
