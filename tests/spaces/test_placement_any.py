"""``any``: any live node, each of them sometimes."""

from __future__ import annotations

import pytest

from spaces.exceptions import ConfigError
from spaces.placement import resolve_selector
from spaces.placement.any import select_any
from tests.spaces.placement import node


def test_picks_among_the_given_nodes() -> None:
    nodes = [node("a"), node("b"), node("c")]
    seen = {select_any(nodes).node_id for _ in range(200)}
    assert seen == {"a", "b", "c"}


def test_unknown_selector_is_a_config_error() -> None:
    assert resolve_selector("any") is select_any
    with pytest.raises(ConfigError, match="SPACES_SFU_SELECTOR"):
        resolve_selector("roundrobin")
