"""Progress of an import and of a pipeline run, in words a user knows.

One bar per step (each track's encoding, levels and transcription, the
mix, the transcript) with the time left on a terminal; elsewhere (CI,
pipes) one line when a step starts, at each quarter and when it is done.
Only the run being watched is shown: the catalog keeps each run's progress
apart (``Space.run``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Never, Protocol, TextIO

from tqdm import tqdm

from spaces.catalog import Catalog
from spaces.exceptions import SpacesError
from spaces.models import Space, SpaceState

_DONE = {SpaceState.READY, SpaceState.FAILED}

#: Stage keys in ``Space.progress`` (``kind`` or ``kind:speaker``) -> what a user reads.
_FIXED = {"mix": "mixing the replay", "assemble": "writing the transcript"}
_PER_SPEAKER = {
    "encode": "reading {}'s audio",
    "levels": "measuring {}'s loudness",
    "transcribe": "transcribing {}",
}

_STATES = {
    SpaceState.RECORDED: "waiting for a worker",
    SpaceState.PROCESSING: "processing",
    SpaceState.READY: "ready",
    SpaceState.FAILED: "failed",
}

#: ETAs are shown once a step has run this long: before, the rate means little.
_ETA_AFTER = 1.0


def stage_label(stage: str) -> str:
    """``"transcribe:alice"`` -> ``"transcribing alice"``; unknown stages as they are."""
    if stage in _FIXED:
        return _FIXED[stage]
    kind, sep, who = stage.partition(":")
    if sep and kind in _PER_SPEAKER:
        return _PER_SPEAKER[kind].format(who)
    return stage.replace(":", " ")


def state_label(state: SpaceState) -> str:
    return _STATES.get(state, str(state))


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def duration_text(seconds: float) -> str:
    """``75.3`` -> ``"1:15"``; an hour or more as ``"1:02:03"``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_text(seconds: float) -> str:
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


class Board(Protocol):
    """Where progress goes: ``state`` and ``step`` as they change, ``close`` at the end."""

    def state(self, state: SpaceState, now: float) -> None: ...

    def step(self, key: str, fraction: float, now: float) -> None: ...

    def close(self) -> None: ...


class _Step:
    """One step's start and latest fraction, for its ETA."""

    def __init__(self, now: float) -> None:
        self.started = now
        self.fraction = 0.0

    def remaining(self, now: float) -> float | None:
        ran = now - self.started
        if self.fraction <= 0 or self.fraction >= 1 or ran < _ETA_AFTER:
            return None
        return ran * (1 - self.fraction) / self.fraction


class Lines:
    """Without a terminal: one line when a step starts, at each quarter, and when it is done."""

    def __init__(self, out: TextIO, started: float) -> None:
        self.out = out
        self.started = started
        self.current: SpaceState | None = None
        self.steps: dict[str, _Step] = {}
        self.quarter: dict[str, int] = {}

    def _say(self, now: float, text: str) -> None:
        print(f"[{now - self.started:6.1f}s] {text}", file=self.out, flush=True)

    def state(self, state: SpaceState, now: float) -> None:
        if state is not self.current:
            self.current = state
            self._say(now, state_label(state))

    def step(self, key: str, fraction: float, now: float) -> None:
        label = stage_label(key)
        step = self.steps.get(key)
        if step is None:
            step = self.steps[key] = _Step(now)
            self.quarter[key] = 0
            if fraction >= 1.0:  # begun and done between two looks: no time to tell
                step.fraction = fraction
                self._say(now, f"{label}: done")
                return
            self._say(now, f"{label}...")
        if step.fraction >= 1.0:
            return
        step.fraction = fraction
        if fraction >= 1.0:
            self._say(now, f"{label}: done in {now - step.started:.1f} s")
            return
        quarter = int(fraction * 4)
        if quarter > self.quarter[key]:
            self.quarter[key] = quarter
            left = step.remaining(now)
            self._say(now, f"{label}: {fraction * 100:.0f} %" + (f", {eta_text(left)}" if left is not None else ""))

    def close(self) -> None:
        pass


class Bars:
    """On a terminal: a bar per step with its time left."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.bars: dict[str, tqdm[Never]] = {}
        self.status = tqdm(total=0, bar_format="{desc}", file=out, position=0, leave=True)

    def state(self, state: SpaceState, now: float) -> None:
        self.status.set_description_str(state_label(state))

    def step(self, key: str, fraction: float, now: float) -> None:
        bar = self.bars.get(key)
        if bar is None:
            bar = self.bars[key] = tqdm(
                total=100,
                desc=stage_label(key),
                file=self.out,
                leave=True,
                bar_format="{desc:<32} {bar} {n:3.0f}%  {elapsed} elapsed, {remaining} left",
            )
        bar.update(fraction * 100 - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.status.close()


def board(started: float, out: TextIO | None = None) -> Board:
    out = out or sys.stderr
    return Bars(out) if out.isatty() else Lines(out, started)


def watch(
    catalog: Catalog,
    space_id: str,
    *,
    run: int = 0,
    timeout: float,
    started: float,
    poll: float = 0.5,
    view: Board | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Space:
    """Poll the catalog until run ``run`` of the space is ready or failed, showing its progress.

    Until the space is on that run (its ``finalize`` not yet started), what
    the catalog says belongs to an earlier run and is not shown.
    """
    view = view or board(started)
    try:
        while True:
            space = catalog.get_space(space_id)
            now = clock()
            if space.run >= run:
                # Steps first: the last step's "done" comes before the space's "ready".
                for key, fraction in sorted(space.progress.items()):
                    view.step(key, fraction, now)
                view.state(space.state, now)
                if space.state in _DONE:
                    return space
            else:
                view.state(SpaceState.RECORDED, now)
            if now - started > timeout:
                raise SpacesError(f"space {space_id} still {state_label(space.state)} after {timeout:.0f}s")
            time.sleep(poll)
    finally:
        view.close()
