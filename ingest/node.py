"""This SFU process as a node: registration, heartbeats with its load, and where a join belongs.

``NodeAgent`` registers the node in Redis through ``spaces.router`` (a
second live process with the same node id is refused), heartbeats its load
every ``sfu_heartbeat`` seconds, sweeps dead nodes between heartbeats
(``spaces.sweeper``), and answers, for a join to a room not open here,
whether this node may open it: it owns the space (or nobody does), another
live node holds it (``Moved``), or its node is down (``Unavailable``; a
space that never went live is taken over instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ingest.exceptions import Moved, SpaceEnded, Unavailable
from spaces.catalog import Catalog
from spaces.exceptions import NodeIdTaken, NotFound, RouterUnavailable
from spaces.models import SpaceState
from spaces.nodes import Node, NodeLoad
from spaces.router import SWEPT, NodeRouter
from spaces.settings import Settings
from spaces.sweeper import Sweeper

log = logging.getLogger(__name__)

#: Sweep for dead nodes every this many heartbeats.
SWEEP_EVERY = 3


@dataclass(frozen=True)
class Counters:
    """What the node's rooms add up to right now (``Sfu`` supplies it)."""

    rooms: int
    participants: int
    forwarded: int
    """Packets forwarded so far by the rooms open now."""


class NodeAgent:
    def __init__(self, settings: Settings, *, catalog: Catalog, counters: Callable[[], Counters]) -> None:
        self.settings = settings
        self.catalog = catalog
        self.counters = counters
        self.router = NodeRouter.from_settings(settings)
        self.sweeper = Sweeper(settings, router=self.router)
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.node = Node(
            node_id=settings.node_id,
            url=settings.sfu_url.rstrip("/"),
            host=socket.gethostname(),
            spool=str(settings.spool_dir.resolve()),
            udp_ports=settings.sfu_udp_ports,
            started_at=time.time(),
        )
        self.load = NodeLoad()
        self._task: asyncio.Task[None] | None = None
        self._last = (time.monotonic(), _cpu_seconds(), 0)

    @property
    def node_id(self) -> str:
        return self.node.node_id

    async def start(self, *, holds_spool: bool) -> None:
        """Register (``NodeIdTaken`` if the id is live elsewhere), then heartbeat in the background."""
        await asyncio.to_thread(self.router.register, self.node, self.instance, holds_spool=holds_spool)
        log.info("SFU node %s registered at %s", self.node_id, self.node.url)
        self._task = asyncio.get_running_loop().create_task(self._heartbeats())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.to_thread(self.router.deregister, self.node_id, self.instance)
        except RouterUnavailable as e:
            log.warning("node %s not deregistered (its registration expires by itself): %s", self.node_id, e)
        await asyncio.to_thread(self.sweeper.close)

    async def _heartbeats(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(self.settings.sfu_heartbeat)
            self.load = self.measure()
            try:
                await asyncio.to_thread(self.router.heartbeat, self.node, self.instance, self.load)
            except RouterUnavailable as e:
                log.warning("node %s: heartbeat failed: %s", self.node_id, e)
                continue
            except NodeIdTaken as e:
                # Another process runs as this node now: the registry no longer routes here.
                log.error("node %s: %s", self.node_id, e)
                continue
            beats += 1
            if beats % SWEEP_EVERY == 0:
                await asyncio.to_thread(self.sweeper.sweep_quietly)

    def measure(self) -> NodeLoad:
        now, cpu = time.monotonic(), _cpu_seconds()
        counters = self.counters()
        then, cpu_then, forwarded_then = self._last
        self._last = (now, cpu, counters.forwarded)
        elapsed = max(now - then, 1e-3)
        return NodeLoad(
            rooms=counters.rooms,
            participants=counters.participants,
            # Rooms that closed take their counts with them: never negative.
            packets_per_s=round(max(0, counters.forwarded - forwarded_then) / elapsed, 1),
            cpu=round((cpu - cpu_then) / elapsed, 3),
        )

    # --- joins ------------------------------------------------------------------------

    async def claim_room(self, space_id: str) -> None:
        """May this node open the space's room? Raise ``Moved``/``Unavailable``/``SpaceEnded`` if not."""
        try:
            routing = await asyncio.to_thread(self.router.open_room, space_id, self.node_id)
        except RouterUnavailable as e:
            raise Unavailable("the SFU cannot reach its node registry; try again shortly") from e
        if routing.kind == "own":
            await asyncio.to_thread(self._record_node, space_id)
            return
        if routing.kind == "moved" and routing.node is not None:
            raise Moved(routing.node.rtc_url(space_id), routing.node.node_id)
        if routing.kind == "ended":
            raise SpaceEnded("the space has ended")
        # Its node is down (or unknown). A space nothing was recorded of moves here.
        if await asyncio.to_thread(self._adopt, space_id, routing.owner):
            return
        raise Unavailable("the SFU node holding this space is down; it is being recovered, try again shortly")

    def _adopt(self, space_id: str, dead: str) -> bool:
        try:
            space = self.catalog.get_space(space_id)
        except NotFound:
            return False
        if space.state is not SpaceState.CREATED or not self.router.adopt(space_id, dead, self.node_id):
            return False
        log.info("space %s taken over from dead node %s", space_id, dead, extra={"space_id": space_id})
        self._record_node(space_id)
        return True

    def _record_node(self, space_id: str) -> None:
        with contextlib.suppress(NotFound):
            space = self.catalog.get_space(space_id)
            if space.node != self.node_id:
                self.catalog.put_space(replace(space, node=self.node_id))

    # --- handing spaces over -----------------------------------------------------------

    def claim_recovery(self, space_id: str) -> bool:
        if self.router.claim_recovery(space_id, self.node_id):
            return True
        if self.router.owner(space_id) == SWEPT:
            # The sweep that took it may have died before enqueueing its pipeline.
            self.sweeper.finish(space_id, self.node_id)
        return False

    def release(self, space_id: str) -> None:
        self.router.release(space_id, self.node_id)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
