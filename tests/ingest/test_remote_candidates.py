"""The SFU sends ICE checks only to a bounded number of allowed addresses.

An answer names the addresses the SFU will send STUN checks to. One with
900 ``a=candidate`` lines made it send thousands of datagrams to those
ports; now more than ``sfu_max_remote_candidates`` per m-line is refused
with ``bad_sdp`` and nothing is sent, at most that many are ever checked
per connection, and excluded addresses (loopback, link-local and the SFU's
own in production, or the networks ``sfu_ice_excluded`` names) are never
checked: the datagrams each listening port actually receives are counted.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from ingest.client import PcmTrack, SpaceClient
from ingest.ice import _DEFAULT_HOST_ADDRESSES, CandidatePolicy, guard_remote_candidates
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.test_participant_cap import until
from tests.support.sfu import VOICE_A, make_space, rtc_url, running_sfu, speech48k, token


class Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.datagrams += 1


async def listening(count: int, host: str = "127.0.0.1") -> tuple[list[int], list[Counter], list[Any]]:
    """``count`` UDP sockets on ``host``: their ports, their counters, their transports."""
    loop = asyncio.get_running_loop()
    ports, counters, transports = [], [], []
    for _ in range(count):
        transport, counter = await loop.create_datagram_endpoint(Counter, local_addr=(host, 0))
        ports.append(transport.get_extra_info("sockname")[1])
        counters.append(counter)
        transports.append(transport)
    return ports, counters, transports


def candidate_lines(host: str, ports: list[int], total: int) -> list[str]:
    # Highest priorities, so the SFU would check these before the client's own.
    return [f"a=candidate:x{i} 1 udp {2130706431 - i} {host} {ports[i % len(ports)]} typ host" for i in range(total)]


class Injecting(SpaceClient):
    """A client whose answers name extra candidates (an attacker's, pointing anywhere)."""

    def __init__(self, *args: Any, extra: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra = extra

    async def send(self, message: dict[str, Any]) -> None:
        if message.get("type") == "answer":
            lines = message["sdp"].split("\r\n")
            out: list[str] = []
            for line in lines:
                out.append(line)
                if line.startswith("a=mid:"):
                    out.extend(self.extra)
            message = {**message, "sdp": "\r\n".join(out)}
        await super().send(message)


def test_an_answer_with_900_candidates_is_refused_and_nothing_is_sent(sfu_settings: Settings) -> None:
    space_id = make_space(sfu_settings)
    url = rtc_url(sfu_settings, space_id)

    async def scenario() -> None:
        ports, counters, transports = await listening(30)
        async with running_sfu(sfu_settings):
            alice = SpaceClient(url, token(sfu_settings, space_id, "alice", Role.HOST))
            await alice.connect()
            attacker = Injecting(
                url, token(sfu_settings, space_id, "eve", Role.LISTENER), extra=candidate_lines("127.0.0.1", ports, 900)
            )
            await attacker.connect()
            await attacker.wait_for(lambda c: bool(c.errors))
            assert attacker.errors[0]["code"] == "bad_sdp"
            assert "901 ICE candidates; at most 20 are accepted" in attacker.errors[0]["message"], attacker.errors
            await asyncio.sleep(3.0)
            sent = sum(c.datagrams for c in counters)
            print("datagrams to the answer's 900 candidates in 3 s:", sent)
            assert sent == 0
            await attacker.close()
            await alice.close()
        for t in transports:
            t.close()

    asyncio.run(scenario())


def signalled(pc: Any) -> list[str]:
    """Remote candidates the SFU's aioice holds from the answer (peer-reflexive ones excluded)."""
    return [
        c.host
        for t in pc.getTransceivers()
        for c in t.receiver.transport.transport._connection.remote_candidates
        if c.type != "prflx"
    ]


def test_production_never_checks_loopback(sfu_settings: Settings) -> None:
    settings = replace(sfu_settings, env="production", secret_key=secrets.token_urlsafe(48))
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)

    async def scenario() -> None:
        ports, counters, transports = await listening(10)
        async with running_sfu(settings) as running:
            alice = SpaceClient(url, token(settings, space_id, "alice", Role.HOST))
            await alice.connect()
            # Ten candidates on loopback: within the cap, but loopback is excluded in production.
            eve = Injecting(
                url, token(settings, space_id, "eve", Role.LISTENER), extra=candidate_lines("127.0.0.1", ports, 10)
            )
            await eve.connect()
            participant = running.sfu.rooms.rooms[space_id].participants["eve"]
            await until(lambda: eve.answered_rev >= 1 and participant.rev == 1 and participant._awaiting is None)
            # (Nobody connects on loopback in production, not even alice: only the count matters here.)
            assert signalled(participant.pc) == []
            await asyncio.sleep(3.0)
            assert sum(c.datagrams for c in counters) == 0
            for c in (alice, eve):
                await c.close()
        for t in transports:
            t.close()

    asyncio.run(scenario())


def test_excluded_networks_are_never_checked_and_others_still_connect(sfu_settings: Settings) -> None:
    """127.0.0.2 excluded by the setting: no datagram there; 127.0.0.1 ports are checked; audio flows."""
    settings = replace(sfu_settings, sfu_ice_excluded="127.0.0.2/32")
    space_id = make_space(settings)
    url = rtc_url(settings, space_id)

    async def scenario() -> None:
        excluded_ports, excluded, t1 = await listening(5, "127.0.0.2")
        allowed_ports, allowed, t2 = await listening(5, "127.0.0.1")
        async with running_sfu(settings) as running:
            alice = SpaceClient(
                url,
                token(settings, space_id, "alice", Role.HOST),
                track=PcmTrack(speech48k("Hello there.", VOICE_A), loop=True),
            )
            await alice.connect()
            extra = candidate_lines("127.0.0.2", excluded_ports, 5) + candidate_lines("127.0.0.1", allowed_ports, 5)
            lena = Injecting(url, token(settings, space_id, "lena", Role.LISTENER), extra=extra, decode=False)
            await lena.connect()
            await until(lambda: sum(c.datagrams for c in allowed) > 0)
            await until(lambda: lena.slot_of("alice") is not None and lena.received.get(0) is not None)
            await until(lambda: lena.received[0].packets > 25)
            assert sum(c.datagrams for c in excluded) == 0
            held = signalled(running.sfu.rooms.rooms[space_id].participants["lena"].pc)
            assert "127.0.0.2" not in held and "127.0.0.1" in held
            assert not lena.errors, lena.errors
            for c in (alice, lena):
                await c.close()
        for t in (*t1, *t2):
            t.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("excluded", "production", "allowed", "refused"),
    [
        ("", False, ["127.0.0.1", "169.254.1.1", "10.0.0.1"], []),
        (
            "",
            True,
            ["203.0.113.5", "10.0.0.1", "2001:db8::1"],
            ["127.0.0.1", "::1", "169.254.9.9", "fe80::1%eth0", "0.0.0.0"],
        ),
        ("10.0.0.0/8, 192.168.0.0/16", False, ["127.0.0.1"], ["10.1.2.3", "192.168.1.1", "::ffff:10.0.0.1"]),
        ("none", True, ["127.0.0.1", "169.254.1.1"], []),
    ],
)
def test_candidate_policy(excluded: str, production: bool, allowed: list[str], refused: list[str]) -> None:
    policy = CandidatePolicy.build(max_candidates=20, excluded=excluded, production=production)
    assert [a for a in allowed if not policy.allows(a)] == []
    assert [a for a in refused if policy.allows(a)] == []
    assert not policy.allows("not-an-address.local")
    if production and excluded == "":
        assert all(not policy.allows(own) for own in _DEFAULT_HOST_ADDRESSES(use_ipv4=True, use_ipv6=True))


def test_aioice_is_handed_at_most_the_cap_and_no_excluded_address() -> None:
    async def scenario() -> None:
        pc = RTCPeerConnection()
        transceiver = pc.addTransceiver("audio")
        ice = transceiver.receiver.transport.transport
        policy = CandidatePolicy.build(max_candidates=20, excluded="198.51.100.0/24", production=False)
        guard_remote_candidates(ice, policy)
        connection = ice._connection
        from aioice import Candidate

        for i in range(30):
            connection._add_remote_candidate(
                Candidate("f", 1, "udp", 100 + i, f"198.51.100.{i + 1}", 9000 + i, "host"), f"198.51.100.{i + 1}"
            )
        assert connection.remote_candidates == []
        for i in range(30):
            host = f"203.0.113.{i + 1}"
            connection._add_remote_candidate(Candidate(f"g{i}", 1, "udp", 100 + i, host, 9000 + i, "host"), host)
        assert [c.host for c in connection.remote_candidates] == [f"203.0.113.{i + 1}" for i in range(20)]
        await pc.close()

    asyncio.run(scenario())
