"""Nodes for the selector tests: records as the router returns them."""

from __future__ import annotations

from spaces.nodes import Node, NodeLoad


def node(node_id: str, *, rooms: int = 0, pending: int = 0, participants: int = 0, cpu: float = 0.0) -> Node:
    return Node(
        node_id=node_id,
        url=f"http://{node_id}.test:8001",
        load=NodeLoad(rooms=rooms, participants=participants, cpu=cpu),
        pending=pending,
    )
