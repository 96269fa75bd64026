"""SFU nodes as the rest of the system sees them: a plain record refreshed by heartbeats.

Every SFU process is a node (``ingest.node`` runs one): an id, the public
base URL of its signaling server, the UDP ports it uses, and the load it
last reported. ``spaces.router`` keeps these records in Redis; placement
(``spaces.placement``) picks among the live ones.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

#: Node ids appear in Redis keys, URLs and logs: short and plain.
NODE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class NodeLoad:
    """What a node reports with every heartbeat."""

    rooms: int = 0
    participants: int = 0
    packets_per_s: float = 0.0
    """RTP packets forwarded per second (to every listener) since the last heartbeat."""
    cpu: float = 0.0
    """Fraction of one core the node's process used since the last heartbeat."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeLoad:
        return cls(
            rooms=int(data.get("rooms", 0)),
            participants=int(data.get("participants", 0)),
            packets_per_s=float(data.get("packets_per_s", 0.0)),
            cpu=float(data.get("cpu", 0.0)),
        )


@dataclass(frozen=True)
class Node:
    node_id: str
    url: str
    """Public base URL of the node's signaling server (``http(s)://host:port``)."""
    host: str = ""
    """The machine it runs on (a restart on the same machine may take its id back)."""
    spool: str = ""
    udp_ports: str = ""
    started_at: float = 0.0
    heartbeat_at: float = 0.0
    """Redis server time of the last heartbeat (one clock for every machine)."""
    load: NodeLoad = field(default_factory=NodeLoad)
    pending: int = 0
    """Spaces placed on the node and not opened yet (filled in by the router)."""
    alive: bool = True
    """Whether its registration is fresh (filled in by the router)."""

    @property
    def effective_rooms(self) -> int:
        """Rooms it holds plus rooms it is about to hold: what placement balances."""
        return self.load.rooms + self.pending

    def rtc_url(self, space_id: str) -> str:
        """The signaling WebSocket of a space on this node."""
        return rtc_url(self.url, space_id)

    def with_state(self, *, pending: int, alive: bool) -> Node:
        return replace(self, pending=pending, alive=alive)

    def info(self) -> dict[str, Any]:
        """The fields a node sets once, at registration."""
        return {
            "node_id": self.node_id,
            "url": self.url,
            "host": self.host,
            "spool": self.spool,
            "udp_ports": self.udp_ports,
            "started_at": self.started_at,
        }

    @classmethod
    def from_record(cls, info: dict[str, Any], load: dict[str, Any], heartbeat_at: float) -> Node:
        return cls(
            node_id=str(info["node_id"]),
            url=str(info["url"]),
            host=str(info.get("host", "")),
            spool=str(info.get("spool", "")),
            udp_ports=str(info.get("udp_ports", "")),
            started_at=float(info.get("started_at", 0.0)),
            heartbeat_at=heartbeat_at,
            load=NodeLoad.from_dict(load),
        )


def parse_port_range(value: str) -> tuple[int, int] | None:
    """``"40000-40999"`` -> (40000, 40999); empty -> None; raise ``ValueError`` if malformed."""
    value = value.strip()
    if not value:
        return None
    low, sep, high = value.partition("-")
    if not sep:
        raise ValueError(f"a UDP port range looks like MIN-MAX, got {value!r}")
    lo, hi = int(low), int(high)
    if not 1024 <= lo <= hi <= 65535:
        raise ValueError(f"UDP port range {value!r} must lie within 1024-65535, MIN <= MAX")
    return lo, hi


def rtc_url(node_url: str, space_id: str) -> str:
    """The signaling WebSocket of a space on the node whose public URL is ``node_url``."""
    base = urlsplit(node_url)
    scheme = "wss" if base.scheme == "https" else "ws"
    return f"{scheme}://{base.netloc}{base.path.rstrip('/')}/spaces/{space_id}/rtc"
