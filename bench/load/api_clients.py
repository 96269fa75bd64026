"""Child process: replay Range requests and searches against the API at a fixed rate, tallied per phase."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import say

RANGE_BYTES = 64 * 1024
#: Requests the API client keeps in flight at most; beyond it a request is skipped (and counted).
MAX_OUTSTANDING = 64


@dataclass
class Tally:
    ms: list[float] = field(default_factory=list)
    server_errors: int = 0
    errors: int = 0
    skipped: int = 0
    hits: int = 0
    examples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.examples) < 3:
            self.examples.append(what)


async def run_api_clients(url: str, spec: dict[str, Any]) -> None:
    """Range requests and searches at a fixed rate (open loop) until told to stop."""
    import httpx

    audio: list[tuple[str, int]] = [(s, int(n)) for s, n in spec["audio"]]
    queries: list[str] = spec["queries"]
    rate = float(spec["rate"])
    rng = random.Random(spec.get("seed", 1))
    tallies: dict[str, dict[str, Tally]] = {}
    phase = ["live"]
    stopping = asyncio.Event()

    async def control() -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line.startswith("phase "):
                phase[0] = line.split(maxsplit=1)[1]
            else:
                stopping.set()
                return

    async def one(http: httpx.AsyncClient, kind: str, tally: Tally) -> None:
        began = time.perf_counter()
        try:
            if kind == "range":
                space_id, size = rng.choice(audio)
                start = rng.randrange(0, max(1, size - RANGE_BYTES))
                end = min(size - 1, start + RANGE_BYTES - 1)
                r = await http.get(f"/spaces/{space_id}/audio", headers={"Range": f"bytes={start}-{end}"})
                ok = r.status_code == 206 and len(r.content) == end - start + 1
            else:
                r = await http.get("/search", params={"q": rng.choice(queries), "limit": 20})
                ok = r.status_code == 200
                if ok:
                    tally.hits += len(r.json()["hits"])
        except httpx.HTTPError as e:
            tally.error(f"{type(e).__name__}: {e}")
            return
        tally.ms.append((time.perf_counter() - began) * 1000)
        if r.status_code >= 500:
            tally.server_errors += 1
            tally.error(f"{r.status_code} {r.text[:120]}")
        elif not ok:
            tally.error(f"{r.status_code} {r.text[:120]}")

    controller = asyncio.get_running_loop().create_task(control())
    limits = httpx.Limits(max_connections=MAX_OUTSTANDING, max_keepalive_connections=MAX_OUTSTANDING)
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        started, i = time.monotonic(), 0
        while not stopping.is_set():
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stopping.wait(), delay)
                    break
                except TimeoutError:
                    pass
            kind = "range" if i % 2 == 0 else "search"
            tally = tallies.setdefault(phase[0], {}).setdefault(kind, Tally())
            if len(tasks) >= MAX_OUTSTANDING:
                tally.skipped += 1
            else:
                task = asyncio.get_running_loop().create_task(one(http, kind, tally))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.gather(*tasks)
    await controller
    say({ph: {k: t.__dict__ for k, t in kinds.items()} for ph, kinds in tallies.items()})
