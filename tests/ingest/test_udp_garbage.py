"""Garbage on the SFU's media ports: dropped; speakers, listeners and recordings carry on.

A real SFU process hosts two spaces, each with a speaker and a listener.
The SFU's UDP ports for space A's two peer connections are read from the
ICE candidates of the offers the clients received (and checked against the
pair each client's ICE selected). From a socket of its own the test then
sends thousands of datagrams over a few seconds to those ports: empty and
random ones, oversized ones in the SRTP range, truncated RTP headers, RTP
with a foreign or the speaker's own SSRC and odd payload types, truncated
and lying RTCP, DTLS and STUN look-alikes. Checked: the SFU stays up and
every peer connection stays connected, space A's listener keeps receiving
its speaker, the speaker's segments keep closing, space B does not notice,
and in the end each speaker's recording holds the seconds they sent.

Below the live test, a hypothesis fuzz of what the SFU does with whatever
RTP aiortc's parser lets through: the forwarding slot and the recorder.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import secrets
import socket
import struct
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpReceiveParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st
from rq import Queue

from ingest.client import SpaceClient
from ingest.fastpath import AUDIO_LEVEL_EXT_ID, OPUS_PAYLOAD_TYPE, Sink
from ingest.forward import Slot
from ingest.oggwriter import scan
from ingest.opus import CLOCK_RATE
from ingest.recorder import RecorderOptions, TrackRecorder
from ingest.spool import SegmentMeta, SpaceSpool
from spaces.blobstore import open_blob_store
from spaces.models import SpaceState
from spaces.queue import connect
from spaces.settings import Settings
from spaces.tokens import Role
from tests.ingest.hearing import packets
from tests.ingest.recording import CountingTrack, stored_tracks
from tests.support.sfu import VOICE_A, VOICE_B, get_space, make_space, rtc_url, sfu_process, speech48k, token

ATTACK_SECONDS = 4.0
#: Datagrams per 20 ms tick, spread over the target ports (~2000 a second).
PER_TICK = 40
#: Packets of the speaker a listener must get per second of attack (50 are sent).
PER_SECOND = 45
TOLERANCE = 0.2

_CANDIDATE = re.compile(r"^a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host", re.IGNORECASE | re.MULTILINE)


# --- the garbage ---------------------------------------------------------------------


def garbage(rng: random.Random, ssrc: int) -> bytes:
    """One bad datagram of a random kind (``ssrc``: the speaker's, for forgeries)."""
    kind = rng.randrange(12)
    if kind == 0:
        return b""
    if kind == 1:
        return rng.randbytes(rng.randrange(1, 1400))
    if kind == 2:  # in the SRTP range and bigger than any real packet
        return bytes([0x80 | rng.randrange(0x40)]) + rng.randbytes(rng.randrange(1500, 9000))
    if kind == 3:  # a truncated RTP header
        return bytes([0x80, rng.choice([0, 96, 111, 0xE0])]) + rng.randbytes(rng.randrange(0, 10))
    header = struct.Struct("!BBHII")
    if kind == 4:  # RTP from a stranger: foreign SSRC, any payload type, a fake auth tag
        pt = rng.choice([0, 8, 9, 13, 96, 111, 127])
        return header.pack(0x80, pt, rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(32)) + rng.randbytes(
            rng.randrange(0, 300)
        )
    if kind == 5:  # RTP claiming to be the speaker (cannot pass SRTP authentication)
        return header.pack(0x90, 0x80 | 96, rng.getrandbits(16), rng.getrandbits(32), ssrc) + (
            b"\xbe\xde\x00\x01\x20\x7f\x00\x00" + rng.randbytes(rng.randrange(1, 200))
        )
    if kind == 6:  # truncated RTCP (SR, RR, SDES, BYE, APP, RTPFB, PSFB)
        return bytes([0x80 | rng.randrange(4), rng.randrange(200, 207)]) + rng.randbytes(rng.randrange(0, 7))
    if kind == 7:  # RTCP whose length field promises far more than follows
        return struct.pack("!BBHI", 0x81, 201, 0xFFFF, ssrc) + rng.randbytes(rng.randrange(0, 40))
    if kind == 8:  # an unauthenticated BYE for the speaker, with a fake SRTCP index and tag
        return struct.pack("!BBHI", 0x81, 203, 1, ssrc) + rng.randbytes(14)
    if kind == 9:  # DTLS look-alikes: a handshake record, a plaintext close_notify, application data
        return rng.choice(
            [
                b"\x16\xfe\xfd" + rng.randbytes(rng.randrange(10, 300)),
                b"\x15\xfe\xfd\x00\x00\x00\x00\x00\x00\x00\x01\x00\x02\x01\x00",
                b"\x17\xfe\xfd\x00\x01" + rng.randbytes(rng.randrange(8, 200)),
            ]
        )
    if kind == 10:  # STUN look-alikes: a binding request without credentials, a stray response
        tx = rng.randbytes(12)
        attrs = rng.randbytes(rng.randrange(0, 10) * 4)
        method = rng.choice([0x0001, 0x0101, 0x0111, 0x0003])
        return struct.pack("!HHI", method, len(attrs), 0x2112A442) + tx + attrs
    first = rng.choice([*range(0, 20), *range(64, 128), *range(192, 256)])
    return bytes([first]) + rng.randbytes(rng.randrange(0, 200))


def sfu_addresses(client: SpaceClient) -> set[tuple[str, int]]:
    """The SFU's ICE host candidates in the offer this client answered."""
    return {(host, int(port)) for host, port in _CANDIDATE.findall(client.pc.remoteDescription.sdp)}


def selected_remote(client: SpaceClient) -> tuple[str, int]:
    """The SFU end of the candidate pair this client's ICE selected (aioice's nominated pair)."""
    ice = client.pc.getTransceivers()[0].receiver.transport.transport
    pair = ice._connection._nominated[1]
    return (str(pair.remote_addr[0]), int(pair.remote_addr[1]))


def send_ssrc(client: SpaceClient) -> int:
    """The SSRC the client publishes with, from the sendonly m-line of its answer."""
    for section in client.pc.localDescription.sdp.split("m=audio")[1:]:
        if "a=sendonly" in section:
            return int(re.search(r"a=ssrc:(\d+)", section).group(1))  # type: ignore[union-attr]
    raise AssertionError("the client publishes nothing")


def closed_segments(spool: Path) -> int:
    return sum(1 for p in spool.glob("tracks/*/[0-9]*.json") if json.loads(p.read_text())["closed"])


def get_json(url: str, token: str = "") -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# --- the live test ---------------------------------------------------------------------


@pytest.mark.realtime
def test_garbage_on_media_ports_is_dropped(sfu_settings: Settings, tmp_path: Path) -> None:
    settings = replace(sfu_settings, sfu_empty_timeout=30, operator_token=secrets.token_urlsafe(32))
    space_a, space_b = make_space(settings, title="Attacked"), make_space(settings, title="Bystander")
    tracks = {
        "alice": CountingTrack(speech48k("Please remember to bring your notebook tomorrow.", VOICE_A), loop=True),
        "bob": CountingTrack(speech48k("The train leaves every hour from platform four.", VOICE_B), loop=True),
    }
    log_path = tmp_path / "sfu.log"
    base = f"http://127.0.0.1:{settings.sfu_port}"
    figures: dict[str, Any] = {}

    def client(space_id: str, identity: str, role: Role) -> SpaceClient:
        return SpaceClient(
            rtc_url(settings, space_id),
            token(settings, space_id, identity, role),
            track=tracks.get(identity),
            decode=False,
        )

    async def scenario() -> None:
        alice, lena = client(space_a, "alice", Role.HOST), client(space_a, "lena", Role.LISTENER)
        bob, lou = client(space_b, "bob", Role.HOST), client(space_b, "lou", Role.LISTENER)
        everyone = (alice, lena, bob, lou)
        for c in everyone:
            await c.connect()
        await until(lambda: packets(lena, "alice") > 25 and packets(lou, "bob") > 25)
        await until(lambda: all(c.pc.connectionState == "connected" for c in everyone))

        # The SFU's ports for space A's two peer connections, as the clients see them.
        targets = []
        for c in (alice, lena):
            offered = sfu_addresses(c)
            assert selected_remote(c) in offered, (selected_remote(c), offered)
            targets += sorted(offered)
        figures["ports"] = [port for _, port in targets]
        ssrc = send_ssrc(alice)

        spool_a = settings.spool_dir / space_a
        segments_before = closed_segments(spool_a)
        heard_before = {"lena<-alice": packets(lena, "alice"), "lou<-bob": packets(lou, "bob")}
        rng = random.Random(6)
        sent = failed = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.bind(("127.0.0.1", 0))
            attacker.setblocking(False)
            started = time.monotonic()
            tick = 0
            while time.monotonic() - started < ATTACK_SECONDS:
                for i in range(PER_TICK):
                    try:
                        attacker.sendto(garbage(rng, ssrc), targets[i % len(targets)])
                        sent += 1
                    except OSError:  # a full send buffer: the next tick tries again
                        failed += 1
                tick += 1
                await asyncio.sleep(max(0.0, started + tick * 0.02 - time.monotonic()))
            attack = time.monotonic() - started
        figures.update(garbage_sent=sent, send_failed=failed, attack_s=round(attack, 2))
        heard = {
            "lena<-alice": packets(lena, "alice") - heard_before["lena<-alice"],
            "lou<-bob": packets(lou, "bob") - heard_before["lou<-bob"],
        }
        figures["heard_during_attack"] = heard
        assert sent >= 5000, f"only {sent} datagrams sent"
        assert all(n >= PER_SECOND * attack for n in heard.values()), heard

        # Still up, still connected, still recording.
        await asyncio.sleep(0.5)
        assert all(c.pc.connectionState == "connected" for c in everyone)
        assert not any(c.errors for c in everyone)
        assert get_json(f"{base}/healthz")["rooms"] == 2
        rooms = {r["space_id"]: r for r in get_json(f"{base}/stats", settings.operator_token)["rooms"]}
        assert rooms[space_a]["participants"] == 2 and rooms[space_b]["participants"] == 2
        new_segments = closed_segments(spool_a) - segments_before
        figures["segments_closed_during_attack"] = new_segments
        assert new_segments >= int(ATTACK_SECONDS / settings.sfu_segment_seconds) - 1
        after = packets(lena, "alice")
        await asyncio.sleep(1.0)
        assert packets(lena, "alice") - after >= PER_SECOND, "the listener stopped receiving after the attack"

        for track in tracks.values():
            track.stop()
        await asyncio.sleep(0.5)
        await alice.send({"type": "end"})
        await bob.send({"type": "end"})
        for c in everyone:
            await c.wait_for(lambda c: any(m["type"] == "ended" for m in c.messages))
            await c.close()
        await until(lambda: all(get_space(settings, s).state is SpaceState.RECORDED for s in (space_a, space_b)), 20)

    try:
        with sfu_process(settings, log_path) as proc:
            try:
                asyncio.run(scenario())
            except BaseException:
                print(log_path.read_text(errors="replace")[-4000:])
                raise
            assert proc.poll() is None, "the SFU died"
    finally:
        Queue(settings.queue_name, connection=connect(settings)).delete(delete_jobs=True)

    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert "connection closed" not in log and "connection failed" not in log, log[-4000:]
    blobs = open_blob_store(settings)
    for space_id, speaker in ((space_a, "alice"), (space_b, "bob")):
        (stored,) = stored_tracks(blobs, space_id).values()
        sent_s = tracks[speaker].seconds_sent
        figures[f"{speaker}_sent_s"] = round(sent_s, 3)
        figures[f"{speaker}_recorded_s"] = round(stored.seconds, 3)
        assert abs(stored.seconds - sent_s) <= TOLERANCE, f"{speaker}: {stored.seconds:.2f} s of {sent_s:.2f} s"
    print(figures)


# --- fuzz: whatever RTP gets through, through our forwarding and recording -----------------

EXTENSIONS = HeaderExtensionsMap()
EXTENSIONS.configure(
    RTCRtpReceiveParameters(
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=AUDIO_LEVEL_EXT_ID, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level")
        ]
    )
)
#: Timestamps start near the 32-bit wrap as often as anywhere, so streams cross it.
_TS_STARTS = st.sampled_from([0xFFFFF000, 0]) | st.integers(0, 0xFFFFFFFF)
#: How far a speaker's next packet is from the last, in 20 ms frames: mostly the
#: next one, sometimes lost, duplicated, reordered, or after a pause.
_STEPS = st.sampled_from([1] * 8 + [0, 2, 3, -1, -4, 6, 60, 400])
#: Opus TOC bytes of real WebRTC packets (CELT and hybrid fullband, SILK wideband,
#: stereo, code 3 framings), and any byte at all.
_TOCS = st.sampled_from([0xF8, 0xFC, 0x78, 0x4B, 0xFB, 0x0B, 0x03]) | st.integers(0, 255)


def _rtp(first: int, pt: int, seq: int, ts: int, ssrc: int, ext: bytes, payload: bytes) -> bytes:
    return struct.pack("!BBHII", first, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc & 0xFFFFFFFF) + ext + payload


def _one_byte_extension(element: bytes) -> bytes:
    """An RFC 8285 one-byte header extension block holding ``element`` (padded to 32 bits)."""
    padded = element + bytes(-len(element) % 4)
    return b"\xbe\xde" + struct.pack("!H", len(padded) // 4) + padded


@st.composite
def _datagrams(draw: st.DrawFn) -> list[tuple[bytes, float]]:
    """What a speaker's port receives: mostly one plausible stream of RTP, with the odd surprise.

    Most datagrams continue a stream (RFC 6464 audio level or none, Opus-like
    payloads, losses, duplicates, reordering, pauses); some jump the
    timestamp anywhere, switch SSRC (a new stream), mangle the header
    (version, CSRC count, padding, extension elements of any id and length)
    or are any bytes at all. Each comes with its arrival delay.
    """
    out: list[tuple[bytes, float]] = []
    seq, ts, ssrc, frame = draw(st.integers(0, 0xFFFF)), draw(_TS_STARTS), 1, 0
    for _ in range(draw(st.integers(0, 120))):
        kind = draw(st.sampled_from(["next"] * 12 + ["jump", "ssrc", "mangled", "bytes"]))
        delay = draw(st.sampled_from([0.02, 0.02, 0.0, 0.06]) | st.floats(0, 1.5))
        if kind == "bytes":
            out.append((draw(st.binary(max_size=1500)), delay))
            continue
        if kind == "jump":
            frame += draw(st.integers(-(1 << 27), 1 << 27))
        elif kind == "ssrc":
            ssrc, seq, ts, frame = draw(st.sampled_from([1, 2, 3])), draw(st.integers(0, 0xFFFF)), draw(_TS_STARTS), 0
        frame += draw(_STEPS)
        payload = (
            bytes([draw(_TOCS)]) + draw(st.binary(max_size=40)) if draw(st.booleans()) else draw(st.binary(max_size=2))
        )
        level = draw(st.none() | st.integers(0, 255))
        first, ext = (0x80, b"") if level is None else (0x90, _one_byte_extension(bytes([0x20, level])))
        pt = OPUS_PAYLOAD_TYPE | (0x80 if draw(st.booleans()) else 0)
        if kind == "mangled":
            first = draw(st.integers(0, 255))
            pt = draw(st.sampled_from([OPUS_PAYLOAD_TYPE, 0, 111]) | st.integers(0, 255))
            ext = _one_byte_extension(draw(st.binary(min_size=1, max_size=8))) if first & 0x10 else b""
        out.append((_rtp(first, pt, seq + frame, ts + 960 * frame, ssrc, ext, payload), delay))
    return out


@settings(max_examples=200, deadline=None)
@given(_datagrams())
def test_forwarding_and_recording_take_any_rtp(datagrams: list[tuple[bytes, float]]) -> None:
    """Any sequence of datagrams, as the SFU's receiver gets them, through ``Slot`` and ``TrackRecorder``.

    aiortc parses (with the SFU's header extensions) and hands over what
    parses; what follows is ``Participant._rtp`` and ``Room.on_rtp``: Opus
    payload type only, the audio level, ``Slot.forward`` and
    ``TrackRecorder.write``. Nothing may raise; every forwarded packet is
    well-formed RTP on the slot's SSRC carrying the same payload and level;
    every packet is written or counted as dropped; every segment is a whole
    Ogg file holding exactly its stated duration.
    """
    with tempfile.TemporaryDirectory() as tmp:
        spool = SpaceSpool(Path(tmp), "fuzz")
        closed: list[SegmentMeta] = []
        recorder = TrackRecorder(
            spool,
            track_id="00-fuzz",
            speaker="fuzz",
            options=RecorderOptions(segment_seconds=0.2, fill_limit_seconds=0.1),
            on_closed=closed.append,
        )
        out: list[bytes] = []
        slot = Slot(0, ssrc=0x5EED)
        slot.add_sink("lena", Sink(bytes, None, lambda data, addr: out.append(data), None))
        slot.occupy("fuzz")
        accepted: list[RtpPacket] = []
        arrival = 0.0
        for data, delay in datagrams:
            arrival += delay
            try:
                packet = RtpPacket.parse(data, EXTENSIONS)
            except (ValueError, struct.error):
                continue  # dropped before it reaches us
            if packet.payload_type != OPUS_PAYLOAD_TYPE:
                continue
            slot.forward_packet(packet)
            recorder.write(ssrc=packet.ssrc, timestamp=packet.timestamp, payload=packet.payload, arrival=arrival)
            accepted.append(packet)
        recorder.close()

        assert len(out) == len(accepted)
        for sent, packet in zip(out, accepted, strict=True):
            back = RtpPacket.parse(sent, EXTENSIONS)
            assert (back.ssrc, back.payload_type, back.marker) == (slot.ssrc, OPUS_PAYLOAD_TYPE, packet.marker)
            assert back.payload == packet.payload
            assert back.extensions.audio_level == packet.extensions.audio_level
        assert recorder.packets + recorder.dropped == len(accepted)
        for meta in closed:
            data = spool.segment_audio(meta.track_id, meta.seq).read_bytes()
            result = scan(data)
            assert result.valid_bytes == len(data) and result.audio_packets > 0, meta
            assert result.granule == round(meta.duration * CLOCK_RATE), meta
            assert math.isfinite(meta.offset)
