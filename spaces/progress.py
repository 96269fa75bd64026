"""Progress of a space in the pipeline: one bar per stage on a TTY, lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Never

from tqdm import tqdm

from spaces.catalog import Catalog
from spaces.exceptions import SpacesError
from spaces.models import Space, SpaceState

_DONE = {SpaceState.READY, SpaceState.FAILED}


class _Lines:
    """Without a terminal (CI, pipes): one line per state change and finished stage."""

    def __init__(self) -> None:
        self.state: SpaceState | None = None
        self.finished: set[str] = set()

    def show(self, space: Space, elapsed: float) -> None:
        if space.state is not self.state:
            self.state = space.state
            print(f"[{elapsed:6.1f}s] {space.state}", file=sys.stderr, flush=True)
        for stage, fraction in sorted(space.progress.items()):
            if fraction >= 1.0 and stage not in self.finished:
                self.finished.add(stage)
                print(f"[{elapsed:6.1f}s] {stage} done", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Bars:
    def __init__(self) -> None:
        self.bars: dict[str, tqdm[Never]] = {}

    def show(self, space: Space, elapsed: float) -> None:
        for stage, fraction in sorted(space.progress.items()):
            if stage not in self.bars:
                self.bars[stage] = tqdm(total=100, desc=stage, unit="%", leave=True,
                                        bar_format="{desc:<28} {bar} {n:3.0f}% {elapsed}")
            bar = self.bars[stage]
            bar.update(fraction * 100 - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def watch(catalog: Catalog, space_id: str, *, timeout: float, started: float, poll: float = 0.5) -> Space:
    """Poll the catalog until the space is ready or failed, showing progress."""
    view = _Bars() if sys.stderr.isatty() else _Lines()
    try:
        while True:
            space = catalog.get_space(space_id)
            elapsed = time.monotonic() - started
            view.show(space, elapsed)
            if space.state in _DONE:
                return space
            if elapsed > timeout:
                raise SpacesError(f"space {space_id} still {space.state} after {timeout:.0f}s")
            time.sleep(poll)
    finally:
        view.close()
