"""Progress of a space in the pipeline, shown as one bar per stage on a TTY."""

from __future__ import annotations

import sys
import time
from typing import Never

from tqdm import tqdm

from spaces.catalog import Catalog
from spaces.exceptions import SpacesError
from spaces.models import Space, SpaceState

_DONE = {SpaceState.READY, SpaceState.FAILED}


def watch(catalog: Catalog, space_id: str, *, timeout: float, started: float, poll: float = 0.5) -> Space:
    """Poll the catalog until the space is ready or failed, drawing progress bars."""
    bars: dict[str, tqdm[Never]] = {}
    disable = not sys.stderr.isatty()
    try:
        while True:
            space = catalog.get_space(space_id)
            for stage, fraction in sorted(space.progress.items()):
                if stage not in bars:
                    bars[stage] = tqdm(total=100, desc=stage, unit="%", disable=disable, leave=True,
                                       bar_format="{desc:<28} {bar} {n:3.0f}% {elapsed}")
                bar = bars[stage]
                bar.update(fraction * 100 - bar.n)
            if space.state in _DONE:
                return space
            if time.monotonic() - started > timeout:
                raise SpacesError(f"space {space_id} still {space.state} after {timeout:.0f}s")
            time.sleep(poll)
    finally:
        for bar in bars.values():
            bar.close()
