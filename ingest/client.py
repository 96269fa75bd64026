"""A reference Python client of the SFU's protocol (tests, benches, scripts).

``SpaceClient`` joins a space over the signaling socket, answers every
offer (attaching its audio track to the publish m-line when it has one),
and keeps what it receives per slot: decoded frames with their arrival
times, or, with ``decode=False``, just packet counts and arrival times (a
cheap listener for load tests). ``PcmTrack`` plays 48 kHz PCM in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from av import AudioFrame

from ingest.consent import keep_consent
from ingest.fastpath import take_over_receiver
from ingest.ice import rtc_configuration

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
FRAME = 960  # 20 ms


class PcmTrack(MediaStreamTrack):
    """Mono 16-bit 48 kHz samples as a live track, paced in real time, then silence.

    ``started_at`` is the wall-clock time sample 0 was handed to the encoder.
    """

    kind = "audio"

    def __init__(self, samples: npt.NDArray[np.int16], *, loop: bool = False) -> None:
        super().__init__()
        self.samples = samples.astype(np.int16)
        self.loop = loop
        self.started_at: float | None = None
        self._start_mono = 0.0
        self._pos = 0

    @property
    def frames_sent(self) -> int:
        """Frames handed to the encoder so far (one packet each)."""
        return self._pos // FRAME

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.started_at is None:
            self.started_at = time.time()
            self._start_mono = time.monotonic()
        else:
            wait = self._start_mono + self._pos / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        chunk = (
            self.samples[self._pos : self._pos + FRAME]
            if not self.loop
            else np.take(self.samples, range(self._pos, self._pos + FRAME), mode="wrap")
        )
        if len(chunk) < FRAME:
            chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), dtype=np.int16)])
        frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pos
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pos += FRAME
        return frame


@dataclass
class Received:
    """What arrived on one slot."""

    slot: int
    frames: list[tuple[float, npt.NDArray[np.int16]]] = field(default_factory=list)
    """(wall-clock arrival, mono samples) per decoded frame."""
    packets: int = 0
    first_packet_at: float | None = None

    def audio(self) -> npt.NDArray[np.int16]:
        if not self.frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([f for _, f in self.frames])


class SpaceClient:
    def __init__(
        self,
        rtc_url: str,
        token: str,
        *,
        track: MediaStreamTrack | None = None,
        decode: bool = True,
        ice_servers: list[str] | None = None,
        on_packet: Callable[[int, RtpPacket, float], None] | None = None,
        record: bool = True,
    ) -> None:
        self.rtc_url = rtc_url
        self.record = record
        """Whether this client's audio may be recorded when it publishes (its consent)."""
        self.token = token
        self.track = track
        self.decode = decode
        self.on_packet = on_packet
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers or []))
        self.ws: Any = None
        self.welcome: dict[str, Any] | None = None
        self.state: dict[str, Any] = {}
        self.speaking: dict[str, float] = {}
        self.messages: list[dict[str, Any]] = []
        self.timed_messages: list[tuple[float, dict[str, Any]]] = []
        """Every message with its wall-clock arrival time."""
        self.errors: list[dict[str, Any]] = []
        self.received: dict[int, Received] = {}
        self.slots_by_mid: dict[str, int] = {}
        self.answered_rev = 0
        self.joined = asyncio.Event()
        self.closed = asyncio.Event()
        self.connect_started = 0.0
        self.moved_to: str | None = None
        """Where the last ``moved`` message sent this client (``connect`` follows it)."""
        self.queued: int | None = None
        """Place in the node's line for media setup, while waiting in it (``queued``)."""
        self.turn_at: float | None = None
        """When the join's turn in setup started (``welcome``, monotonic)."""
        self._progress = asyncio.Event()
        """Set after each message is handled (and when the socket closes)."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._wrapped: set[int] = set()
        self.pc.on("track", self._on_track)

    # --- connection ----------------------------------------------------------------

    async def connect(self, *, timeout: float = 10.0, max_moves: int = 3) -> None:
        """Join; a ``moved`` answer (the space is on another node) is followed, up to ``max_moves`` times.

        ``timeout`` counts from the join's turn: time waiting in the node's line (``queued``) is not counted.
        """
        self.connect_started = time.monotonic()
        for _ in range(max_moves + 1):
            self.moved_to = None
            self.queued = self.turn_at = None
            self.ws = await websockets.connect(self.rtc_url, max_size=1 << 20, open_timeout=timeout)
            await self.send({"type": "join", "token": self.token, **({} if self.record else {"record": False})})
            reader = asyncio.get_running_loop().create_task(self._read())
            self._tasks.append(reader)
            await self._wait_joined(timeout)
            if self.moved_to is None:
                return
            await reader  # the node closes the socket after "moved"
            self.rtc_url = self.moved_to
            self.joined.clear()
            self.closed.clear()

    async def _wait_joined(self, timeout: float) -> None:
        """Until joined, ``timeout`` from the turn's start (or from now); no limit while in line."""
        start = time.monotonic()
        while not self.joined.is_set():
            self._progress.clear()
            if self.queued is not None:
                await self._progress.wait()
                continue
            left = (self.turn_at or start) + timeout - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"not joined within {timeout:g} s of the turn")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        await self.pc.close()

    async def wait_for(self, predicate: Callable[[SpaceClient], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.05)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                self.messages.append(msg)
                self.timed_messages.append((time.time(), msg))
                kind = msg.get("type")
                if kind == "queued":
                    self.queued = int(msg["position"])
                elif kind == "welcome":
                    self.welcome = msg
                    self.queued = None
                    self.turn_at = time.monotonic()
                elif kind == "offer":
                    await self._answer(msg)
                elif kind == "state":
                    self.state = msg
                    if self.welcome is not None and all(sp.get("slot") is None for sp in msg.get("speakers", ())):
                        # Nobody publishes yet: no offer comes until somebody does.
                        self.joined.set()
                elif kind == "speaking":
                    self.speaking = msg["levels"]
                elif kind == "moved":
                    self.moved_to = str(msg["rtc_url"])
                elif kind == "error":
                    self.errors.append(msg)
                    self.joined.set()
                self._progress.set()
        except websockets.ConnectionClosed:
            pass
        except Exception:
            log.exception("client reader failed")
        finally:
            self.closed.set()
            self.joined.set()
            self._progress.set()

    async def _answer(self, msg: dict[str, Any]) -> None:
        # Slots first: the "track" events fire inside setRemoteDescription.
        self.slots_by_mid.update({str(k): int(v) for k, v in msg.get("slots", {}).items()})
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        for t in self.pc.getTransceivers():
            keep_consent(t.receiver.transport.transport)
        publish_mid = msg.get("publish_mid")
        for t in self.pc.getTransceivers():
            if t.mid == publish_mid and self.track is not None:
                if t.sender.track is None:
                    t.sender.replaceTrack(self.track)
                t.direction = "sendonly"
            elif t.mid in self.slots_by_mid:
                t.direction = "recvonly"
                if not self.decode and id(t.receiver) not in self._wrapped:
                    self._wrapped.add(id(t.receiver))
                    take_over_receiver(t.receiver, self._counter(self.slots_by_mid[t.mid]))
            else:
                t.direction = "inactive"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.send({"type": "answer", "rev": msg["rev"], "sdp": self.pc.localDescription.sdp})
        self.answered_rev = msg["rev"]
        self.joined.set()

    def _slot(self, slot: int) -> Received:
        if slot not in self.received:
            self.received[slot] = Received(slot)
        return self.received[slot]

    def _counter(self, slot: int) -> Callable[[RtpPacket], None]:
        received = self._slot(slot)

        def _count(packet: RtpPacket) -> None:
            now = time.time()
            received.packets += 1
            if received.first_packet_at is None:
                received.first_packet_at = now
            if self.on_packet is not None:
                self.on_packet(slot, packet, now)

        return _count

    def _on_track(self, track: MediaStreamTrack) -> None:
        if not self.decode:
            return
        for t in self.pc.getTransceivers():
            if t.receiver.track is track and t.mid in self.slots_by_mid:
                slot = self.slots_by_mid[t.mid]
                self._tasks.append(asyncio.get_running_loop().create_task(self._consume(slot, track)))
                return

    async def _consume(self, slot: int, track: MediaStreamTrack) -> None:
        received = self._slot(slot)
        try:
            while True:
                frame = await track.recv()
                now = time.time()
                if not isinstance(frame, AudioFrame):
                    continue
                # Packed stereo s16 comes as one row of interleaved samples.
                data = np.asarray(frame.to_ndarray(), dtype=np.int16)
                channels = len(frame.layout.channels)
                mono: npt.NDArray[np.int16] = (
                    data.reshape(-1, channels).mean(axis=1).astype(np.int16) if channels > 1 else data.reshape(-1)
                )
                if received.first_packet_at is None:
                    received.first_packet_at = now
                received.packets += 1
                received.frames.append((now, mono))
        except MediaStreamError:
            pass

    # --- helpers for tests -----------------------------------------------------------

    def slot_of(self, identity: str) -> int | None:
        for s in self.state.get("speakers", []):
            if s["identity"] == identity:
                slot = s.get("slot")
                return int(slot) if slot is not None else None
        return None
