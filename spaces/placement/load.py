"""``load``: the node with the fewest rooms, placed-but-unjoined spaces included."""

from __future__ import annotations

from collections.abc import Sequence

from spaces.nodes import Node


def select_least_loaded(nodes: Sequence[Node]) -> Node:
    # The node id last: equal nodes are chosen the same way every time.
    return min(nodes, key=lambda n: (n.effective_rooms, n.load.participants, n.load.cpu, n.node_id))
