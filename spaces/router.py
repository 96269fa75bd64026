"""The node router: the only code that talks to Redis about SFU nodes and which node holds a space.

Keys, under ``<queue name>:sfu`` (so test runs and deployments sharing one
Redis stay apart)::

    :nodes                      set of node ids with a record
    :node:{id}                  hash: info (JSON, set at registration), load (JSON), heartbeat_at, state
    :node:{id}:lease            the running process's instance token; expires sfu_node_timeout after
                                the last heartbeat, so a node is live exactly while its lease exists
    :node:{id}:spaces           spaces the node owns (placed, live, or left for its recovery)
    :node:{id}:placed           zset: spaces placed on it and not opened yet, by placement time
    :space:{space_id}           who owns the space: a node id; ``recovering:{id}`` while that node
                                finalizes it after a restart; ``done:{id}`` once it handed it over;
                                ``swept`` once a sweep finalized it for a dead node

A space's owner only changes by compare-and-set in a Lua script, so a room
is opened on one node only, and a space is finalized by its node or by a
sweep, never both. Times come from Redis (``TIME``): one clock for every
machine.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from spaces.exceptions import NodeIdTaken, NoNode, RouterUnavailable
from spaces.nodes import Node, NodeLoad
from spaces.placement import SelectNode
from spaces.routing_scripts import SCRIPTS
from spaces.settings import Settings

log = logging.getLogger(__name__)

#: Placed spaces count toward a node's load this long if nobody joins them.
PLACEMENT_WINDOW = 120.0
#: How long ``done:{node}`` stays: a node's recovery later than this may not
#: tell a space it handed over from one it did not (its spool is gone by then).
DONE_TTL = 30 * 24 * 3600
SWEPT = "swept"
DONE = "done:"
RECOVERING = "recovering:"


@dataclass(frozen=True)
class Routing:
    """Where a join for a space must go, as the node receiving it learns from ``open_room``."""

    kind: Literal["own", "moved", "dead", "ended"]
    """``own``: open it here; ``moved``: another live node holds it; ``dead``: its
    node is down; ``ended``: its node (or a sweep) already handed it over."""
    owner: str
    node: Node | None = None
    """The owning node's record, for ``moved`` (and ``dead``, when known)."""


class NodeRouter:
    def __init__(self, redis: Redis, *, prefix: str, node_timeout: float, url: str = "") -> None:
        self.redis = redis
        self.prefix = prefix
        self.node_timeout = node_timeout
        self._url = url
        self._scripts = {name: redis.register_script(body) for name, body in SCRIPTS.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> NodeRouter:
        # Fail fast (a second or two), so an API request answers 503 rather than hang.
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
        return cls(
            redis,
            prefix=f"{settings.queue_name}:sfu",
            node_timeout=settings.sfu_node_timeout,
            url=settings.redis_url,
        )

    def close(self) -> None:
        self.redis.close()

    # --- keys ----------------------------------------------------------------------

    def _nodes_key(self) -> str:
        return f"{self.prefix}:nodes"

    def _node_key(self, node_id: str, part: str = "") -> str:
        return f"{self.prefix}:node:{node_id}" + (f":{part}" if part else "")

    def _owner_key(self, space_id: str) -> str:
        return f"{self.prefix}:space:{space_id}"

    @contextmanager
    def _redis(self) -> Iterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as e:
            where = f" at {self._url}" if self._url else ""
            raise RouterUnavailable(f"the SFU node registry (Redis{where}) is unreachable: {e}") from e

    def _run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        with self._redis():
            return self._scripts[name](keys=list(keys), args=list(args))

    # --- a node's own registration -----------------------------------------------------

    def register(self, node: Node, instance: str, *, holds_spool: bool) -> None:
        """Claim ``node.node_id`` for this process, or raise ``NodeIdTaken``.

        A live registration of the same id is refused, unless it was made on
        this machine with this spool and the caller holds the spool's lock:
        then the process that made it is gone (the lock dies with it) and a
        restart takes its id back at once instead of waiting for it to expire.
        """
        holder = self._heartbeat(node, instance, NodeLoad(), may_replace="")
        if holder is None:
            return
        previous = self.node(node.node_id)
        if holds_spool and previous is not None and (previous.host, previous.spool) == (node.host, node.spool):
            if self._heartbeat(node, instance, NodeLoad(), may_replace=holder) is None:
                log.info("node %s: took over the registration of its previous process", node.node_id)
                return
        where = f" at {previous.url} on {previous.host}" if previous is not None else ""
        raise NodeIdTaken(
            f"SFU node {node.node_id!r} is already running{where}: stop it, or give this node another "
            f"SPACES_SFU_NODE_ID (a node that died frees its id {self.node_timeout:.0f} s after its last heartbeat)"
        )

    def heartbeat(self, node: Node, instance: str, load: NodeLoad) -> None:
        """Refresh the node's lease and load; ``NodeIdTaken`` if another process took its id."""
        holder = self._heartbeat(node, instance, load, may_replace="")
        if holder is not None:
            raise NodeIdTaken(f"SFU node {node.node_id!r} was taken over by another process ({holder})")

    def _heartbeat(self, node: Node, instance: str, load: NodeLoad, *, may_replace: str) -> str | None:
        holder = self._run(
            "heartbeat",
            [self._node_key(node.node_id, "lease"), self._node_key(node.node_id), self._nodes_key()],
            [
                instance,
                int(self.node_timeout * 1000),
                json.dumps(node.info(), sort_keys=True),
                node.node_id,
                json.dumps(load.to_dict(), sort_keys=True),
                may_replace,
            ],
        )
        return _text(holder) if holder is not None else None

    def deregister(self, node_id: str, instance: str) -> None:
        """A graceful stop: the node is no longer live; forgotten if it owns no space."""
        self._run(
            "deregister",
            [
                self._node_key(node_id, "lease"),
                self._node_key(node_id),
                self._nodes_key(),
                self._node_key(node_id, "spaces"),
            ],
            [instance, node_id],
        )

    # --- reading nodes -------------------------------------------------------------------

    def _now(self) -> float:
        with self._redis():
            seconds, micros = self.redis.time()
        return float(seconds) + micros / 1e6

    def nodes(self) -> list[Node]:
        """Every registered node, live or not, with its pending placements; by id."""
        with self._redis():
            ids = sorted(_text(i) for i in self.redis.smembers(self._nodes_key()))
            now = self._now()
            pipe = self.redis.pipeline(transaction=False)
            for node_id in ids:
                pipe.hgetall(self._node_key(node_id))
                pipe.exists(self._node_key(node_id, "lease"))
                pipe.zcount(self._node_key(node_id, "placed"), now - PLACEMENT_WINDOW, "+inf")
            replies = pipe.execute()
        out = []
        for i, _ in enumerate(ids):
            record, alive, pending = replies[3 * i : 3 * i + 3]
            node = _node_from_hash(record)
            if node is not None:
                out.append(node.with_state(pending=int(pending), alive=bool(alive)))
        return out

    def live_nodes(self) -> list[Node]:
        """Nodes whose registration is fresh: the only ones ever handed out."""
        return [n for n in self.nodes() if n.alive]

    def node(self, node_id: str) -> Node | None:
        with self._redis():
            record = self.redis.hgetall(self._node_key(node_id))
            alive = self.redis.exists(self._node_key(node_id, "lease"))
        node = _node_from_hash(record)
        return node.with_state(pending=0, alive=bool(alive)) if node is not None else None

    # --- placing spaces (the API) -------------------------------------------------------

    def place(self, space_id: str, select: SelectNode) -> Node:
        """Put a new space on a live node chosen by ``select``; ``NoNode`` if none is live."""
        nodes = self.live_nodes()
        if not nodes:
            raise NoNode("no SFU node is running: live spaces cannot start right now; try again shortly")
        node = select(nodes)
        taken = self._run(
            "place",
            [self._owner_key(space_id), self._node_key(node.node_id, "spaces"), self._node_key(node.node_id, "placed")],
            [node.node_id, space_id],
        )
        if taken is not None:
            owner = self.node(_text(taken))
            if owner is None:
                raise NoNode(f"space {space_id!r} is held by an unknown SFU node")
            return owner
        return node

    def unplace(self, space_id: str, node_id: str) -> None:
        """Undo ``place`` (the space could not be created after all)."""
        self._move(space_id, node_id, "")

    def node_for(self, space_id: str, select: SelectNode, *, may_move: bool) -> Node | None:
        """The live node that holds (or will hold) a space; ``None`` once it is handed over.

        A space no node holds yet is placed now. A space whose node is down
        moves to a live node if ``may_move`` (nothing was recorded there yet),
        else ``NoNode``: its node must come back or be swept first.
        """
        with self._redis():
            raw = self.redis.get(self._owner_key(space_id))
        if raw is None:
            return self.place(space_id, select)
        owner = _text(raw)
        if owner == SWEPT or owner.startswith((DONE, RECOVERING)):
            return None
        node = self.node(owner)
        if node is not None and node.alive:
            return node
        if not may_move:
            raise NoNode(f"the SFU node of space {space_id!r} is not responding; try again shortly")
        nodes = self.live_nodes()
        if not nodes:
            raise NoNode("no SFU node is running: live spaces cannot start right now; try again shortly")
        new = select(nodes)
        if self._move(space_id, owner, new.node_id, placed=True):
            log.info("space %s moved from dead node %s to %s", space_id, owner, new.node_id)
            return new
        return self.node_for(space_id, select, may_move=may_move)

    def owner(self, space_id: str) -> str | None:
        with self._redis():
            raw = self.redis.get(self._owner_key(space_id))
        return _text(raw) if raw is not None else None

    def _move(self, space_id: str, old: str, new: str, *, placed: bool = False) -> bool:
        keys = [
            self._owner_key(space_id),
            self._node_key(old or "-", "spaces"),
            self._node_key(old or "-", "placed"),
            self._node_key(new or "-", "spaces"),
            self._node_key(new or "-", "placed"),
        ]
        return bool(self._run("move", keys, [old, new, space_id, "1" if placed else "0"]))

    # --- a node's rooms -------------------------------------------------------------------

    def open_room(self, space_id: str, node_id: str) -> Routing:
        """A join reached ``node_id``: may it open the room (it owns the space, or nobody does)?"""
        kind, owner = self._run(
            "open",
            [self._owner_key(space_id), self._node_key(node_id, "spaces"), self._node_key(node_id, "placed")],
            [node_id, space_id, self.prefix],
        )
        routing = Routing(kind=_text(kind), owner=_text(owner))  # type: ignore[arg-type]
        if routing.kind in ("moved", "dead"):
            return Routing(kind=routing.kind, owner=routing.owner, node=self.node(routing.owner))
        return routing

    def adopt(self, space_id: str, dead: str, node_id: str) -> bool:
        """Take a space over from a dead node (the caller checked nothing was recorded there)."""
        return self._move(space_id, dead, node_id)

    def claim_recovery(self, space_id: str, node_id: str) -> bool:
        """May ``node_id`` finalize what its spool holds of a space? False once it was swept."""
        holder = self._run("claim", [self._owner_key(space_id)], [node_id])
        if holder is not None:
            log.warning("space %s is no longer %s's to finalize (%s)", space_id, node_id, _text(holder))
        return holder is None

    def release(self, space_id: str, node_id: str) -> None:
        """The node handed the space over (recorded and enqueued): it no longer owns it."""
        self._run(
            "release",
            [self._owner_key(space_id), self._node_key(node_id, "spaces"), self._node_key(node_id, "placed")],
            [node_id, space_id, DONE_TTL],
        )

    # --- dead nodes (the sweep) ------------------------------------------------------------

    def dead_nodes(self, *, grace: float) -> list[Node]:
        """Nodes not live for at least ``grace`` seconds; marks every non-live node dead."""
        now = self._now()
        out = []
        for node in self.nodes():
            if node.alive:
                continue
            with self._redis():
                self.redis.hset(self._node_key(node.node_id), "state", "dead")
            if now - node.heartbeat_at >= grace:
                out.append(node)
        return out

    def spaces_of(self, node_id: str) -> list[str]:
        with self._redis():
            return sorted(_text(s) for s in self.redis.smembers(self._node_key(node_id, "spaces")))

    def claim_sweep(self, space_id: str, dead: str) -> bool:
        """Take a dead node's space for finalizing; False if the node handed it over itself."""
        keys = [self._owner_key(space_id), self._node_key(dead, "spaces"), self._node_key(dead, "placed")]
        return bool(self._run("sweep_claim", keys, [dead, space_id]))

    def swept(self, space_id: str, dead: str) -> None:
        """The sweep finished the space: the dead node no longer lists it."""
        with self._redis():
            self.redis.srem(self._node_key(dead, "spaces"), space_id)
            self.redis.zrem(self._node_key(dead, "placed"), space_id)

    def unassign(self, space_id: str, dead: str) -> bool:
        """A dead node's space that never went live: no node holds it now (placed anew on demand)."""
        return self._move(space_id, dead, "")

    def forget(self, node_id: str) -> bool:
        """Drop a dead node that owns nothing any more."""
        keys = [
            self._node_key(node_id, "lease"),
            self._node_key(node_id),
            self._nodes_key(),
            self._node_key(node_id, "spaces"),
            self._node_key(node_id, "placed"),
        ]
        return bool(self._run("forget", keys, [node_id]))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _node_from_hash(record: Any) -> Node | None:
    fields = {_text(k): _text(v) for k, v in record.items()} if record else {}
    if "info" not in fields:
        return None
    info = json.loads(fields["info"])
    load = json.loads(fields.get("load", "{}"))
    return Node.from_record(info, load, float(fields.get("heartbeat_at", "0")))
