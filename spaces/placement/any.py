"""``any``: a random live node (for nodes known to be alike, or tests)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from spaces.nodes import Node


def select_any(nodes: Sequence[Node]) -> Node:
    return random.choice(list(nodes))
