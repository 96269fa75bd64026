"""ICE configuration of every peer connection the SFU (or our client) makes.

aiortc falls back to a public Google STUN server when given no ICE servers;
the SFU must not talk to anything it was not configured to, so the server
list is always explicit (empty by default: host candidates only, which is
what an SFU with a reachable address needs).
"""

from __future__ import annotations

import asyncio
import errno
import random
from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCBundlePolicy

from spaces.exceptions import ConfigError


def rtc_configuration(ice_servers: Sequence[str] = ()) -> RTCConfiguration:
    """One transport per peer (max-bundle), and only the ICE servers we name."""
    return RTCConfiguration(
        iceServers=[RTCIceServer(urls=url) for url in ice_servers],
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
    )


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Offer ICE host candidates on these local addresses only (process-wide).

    aioice gathers every interface but loopback; tests and benches on one
    machine want exactly ``127.0.0.1``, and a server with several interfaces
    may want just its public one. An empty list restores aioice's default.
    """
    chosen = [a.strip() for a in addresses if a.strip()]
    if not chosen:
        aioice.ice.get_host_addresses = _DEFAULT_HOST_ADDRESSES
        return

    def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = _host_addresses


_DEFAULT_HOST_ADDRESSES = aioice.ice.get_host_addresses


def restrict_udp_ports(loop: asyncio.AbstractEventLoop, low: int, high: int) -> None:
    """Bind the ICE sockets opened on ``loop`` to ports ``low``..``high`` (the node's range).

    aioice (0.13) has no port range option: it binds every host candidate to
    port 0. Its sockets come from ``loop.create_datagram_endpoint``, so that
    one method of this loop is wrapped: a request for port 0 tries the ports
    of the range, starting at a random one, and fails like a bind would
    (``OSError``) when every port is taken. Needs asyncio's own event loop,
    whose methods can be replaced per loop.
    """
    original = loop.create_datagram_endpoint
    span = high - low + 1

    async def _create(protocol_factory: Any, local_addr: Any = None, **kwargs: Any) -> Any:
        if local_addr is None or local_addr[1] != 0:
            return await original(protocol_factory, local_addr=local_addr, **kwargs)
        start = random.randrange(span)
        for i in range(span):
            port = low + (start + i) % span
            try:
                return await original(protocol_factory, local_addr=(local_addr[0], port), **kwargs)
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, f"every UDP port in {low}-{high} is taken")

    try:
        loop.create_datagram_endpoint = _create  # type: ignore[method-assign,assignment]
    except AttributeError as e:
        raise ConfigError("SPACES_SFU_UDP_PORTS needs asyncio's default event loop") from e


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]
