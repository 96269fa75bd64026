"""ICE configuration of every peer connection the SFU (or our client) makes.

aiortc falls back to a public Google STUN server when given no ICE servers;
the SFU must not talk to anything it was not configured to, so the server
list is always explicit (empty by default: host candidates only, which is
what an SFU with a reachable address needs).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransport
from aiortc.rtcconfiguration import RTCBundlePolicy

from spaces.exceptions import ConfigError

log = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Excluded by default in production: nobody outside reaches the SFU from these.
LOCAL_NETWORKS = ("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128")


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


@dataclass(frozen=True)
class CandidatePolicy:
    """Which remote ICE candidates the SFU may send connectivity checks to.

    A client's answer names the addresses the SFU will send STUN to; without
    bounds, one answer could point it at any number of ports on any host
    (the SFU's own, or a private network's). ``max_candidates`` bounds them
    per connection; ``excluded`` networks and the ``own`` addresses of this
    machine are never checked (a client there still connects: its checks
    reach us and aioice learns it as a peer-reflexive candidate).
    """

    max_candidates: int = 20
    excluded: tuple[IpNetwork, ...] = ()
    own: frozenset[str] = frozenset()

    @classmethod
    def build(cls, *, max_candidates: int, excluded: str, production: bool) -> CandidatePolicy:
        """``excluded``: comma-separated networks, ``none``, or empty for the default
        (loopback, link-local and this machine's addresses in production, nothing in development)."""
        value = excluded.strip().lower()
        if value == "none" or (not value and not production):
            return cls(max_candidates=max_candidates)
        networks = split_list(excluded) if value else list(LOCAL_NETWORKS)
        own = frozenset(_DEFAULT_HOST_ADDRESSES(use_ipv4=True, use_ipv6=True)) if production else frozenset()
        return cls(
            max_candidates=max_candidates,
            excluded=tuple(ipaddress.ip_network(n, strict=False) for n in networks),
            own=own,
        )

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if str(address) in self.own:
            return False
        return not any(address in network for network in self.excluded)


def guard_remote_candidates(transport: RTCIceTransport, policy: CandidatePolicy) -> None:
    """Apply ``policy`` to every remote candidate aioice would check on this transport.

    It hooks the one place aioice turns a signalled candidate into a check
    target, after an mDNS name is resolved, so a ``.local`` name pointing at
    an excluded address is caught too.
    """
    connection: Any = transport._connection
    if getattr(connection, "_guarded", False):
        return
    add = connection._add_remote_candidate
    accepted: list[int] = [0]

    def _add(candidate: Any, network_host: str) -> None:
        if accepted[0] >= policy.max_candidates:
            log.info("remote candidate %s ignored: %d already", candidate, policy.max_candidates)
            return
        if not policy.allows(network_host):
            log.info("remote candidate %s ignored: excluded address", candidate)
            return
        accepted[0] += 1
        add(candidate, network_host)

    setattr(connection, "_add_remote_candidate", _add)  # noqa: B010 - one instance's method
    setattr(connection, "_guarded", True)  # noqa: B010
