"""``cpuload``: the node using the least CPU, then the one with the fewest rooms.

CPU is compared in steps of 10 % of a core: two idle nodes at 1 % and 3 %
are equal, and the tie goes to rooms (placed-but-unjoined included), so a
burst of new spaces still spreads between two heartbeats.
"""

from __future__ import annotations

from collections.abc import Sequence

from spaces.nodes import Node

#: CPU differences smaller than this (a fraction of one core) do not count.
CPU_STEP = 0.1


def select_cpuload(nodes: Sequence[Node]) -> Node:
    return min(nodes, key=lambda n: (int(n.load.cpu / CPU_STEP), n.effective_rooms, n.node_id))
