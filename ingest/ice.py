"""ICE configuration of every peer connection the SFU (or our client) makes.

aiortc falls back to a public Google STUN server when given no ICE servers;
the SFU must not talk to anything it was not configured to, so the server
list is always explicit (empty by default: host candidates only, which is
what an SFU with a reachable address needs).
"""

from __future__ import annotations

from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCBundlePolicy


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


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]
