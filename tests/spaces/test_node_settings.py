"""Settings of an SFU node, and how ``spaces up`` shares them out among the nodes it starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from spaces.exceptions import ConfigError
from spaces.settings import Settings
from spaces.supervisor import sfu_node_envs


def test_node_settings_from_the_environment() -> None:
    s = Settings.from_env(
        {"SPACES_SFU_NODE_ID": "eu-1", "SPACES_SFU_UDP_PORTS": "40000-40999", "SPACES_SFU_SPOOL_DIR": "/srv/spool-eu-1",
         "SPACES_SFU_HEARTBEAT": "0.5", "SPACES_SFU_NODE_GRACE": "30", "SPACES_SFU_SELECTOR": "cpuload"}
    )  # fmt: skip
    assert (s.node_id, s.sfu_udp_ports, s.spool_dir) == ("eu-1", "40000-40999", Path("/srv/spool-eu-1"))
    assert (s.sfu_heartbeat, s.sfu_node_grace, s.sfu_selector) == (0.5, 30.0, "cpuload")
    # Without an id, the node is named after its machine and port: stable across restarts.
    assert Settings.from_env({"SPACES_SFU_PORT": "8005"}).node_id == f"{socket.gethostname()}-8005"


@pytest.mark.parametrize(
    "env",
    [{"SPACES_SFU_NODE_ID": "a b"}, {"SPACES_SFU_UDP_PORTS": "40000"}, {"SPACES_SFU_UDP_PORTS": "50000-40000"},
     {"SPACES_SFU_HEARTBEAT": "often"}],
)  # fmt: skip
def test_bad_node_settings(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_spaces_up_gives_each_node_its_port_ports_spool_and_id() -> None:
    s = Settings(data_dir=Path("/d"), sfu_port=8001, sfu_udp_ports="40000-40999", sfu_node_id="box")
    envs = sfu_node_envs(s, 2)
    assert envs == [
        {"SPACES_SFU_PORT": "8001", "SPACES_SFU_NODE_ID": "box-1", "SPACES_SFU_UDP_PORTS": "40000-40499"},
        {"SPACES_SFU_PORT": "8002", "SPACES_SFU_NODE_ID": "box-2", "SPACES_SFU_SPOOL_DIR": "/d/spool-2",
         "SPACES_SFU_PUBLIC_URL": "", "SPACES_SFU_UDP_PORTS": "40500-40999"},
    ]  # fmt: skip
    assert sfu_node_envs(Settings(sfu_port=8001), 1) == [{"SPACES_SFU_PORT": "8001"}]
