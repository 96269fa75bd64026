"""Placement: which live SFU node a new space goes to.

One small interface, ``SelectNode``: given the live nodes (never an empty
list, never a stale registration: the router filters them), return one.
Policies are interchangeable and chosen by ``SPACES_SFU_SELECTOR``:

* ``load`` (default): fewest rooms, counting spaces placed but not yet
  joined (so a burst of new spaces spreads before any heartbeat reports
  them), then fewest participants, then lowest CPU;
* ``cpuload``: lowest CPU (in 10 % steps, so noise does not decide), then
  rooms as ``load`` counts them;
* ``any``: a random node.

A policy of your own is any callable ``(Sequence[Node]) -> Node``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from spaces.exceptions import ConfigError
from spaces.nodes import Node


class SelectNode(Protocol):
    def __call__(self, nodes: Sequence[Node]) -> Node:
        """One of ``nodes`` (a non-empty list of live nodes)."""


def resolve_selector(name: str) -> SelectNode:
    """The policy named by a setting; ``ConfigError`` for an unknown name."""
    from spaces.placement.any import select_any
    from spaces.placement.cpuload import select_cpuload
    from spaces.placement.load import select_least_loaded

    selectors: dict[str, SelectNode] = {
        "load": select_least_loaded,
        "cpuload": select_cpuload,
        "any": select_any,
    }
    try:
        return selectors[name]
    except KeyError as e:
        raise ConfigError(f"SPACES_SFU_SELECTOR must be one of {', '.join(selectors)}, got {name!r}") from e
