"""One participant: their signaling channel, peer connection and negotiation state.

The SFU makes every offer. A participant's peer connection holds, in order
of creation, an optional ``recvonly`` m-line for their microphone (the
*publish* m-line, for hosts and speakers) and one ``sendonly`` m-line per
room slot. ``negotiate`` brings the connection up to date with the room;
only one offer is outstanding at a time, and changes that arrive meanwhile
are folded into the next offer once the answer is in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.rtp import RtpPacket

from ingest.bitrate import ask_bitrate
from ingest.consent import keep_consent
from ingest.exceptions import BadSdp, OutOfOrder
from ingest.fastpath import (
    OPUS_PAYLOAD_TYPE,
    Sink,
    harden_transport,
    opus_only,
    park_sender,
    sink_for,
    take_over_receiver,
)
from ingest.forward import Slot
from ingest.ice import CandidatePolicy, guard_remote_candidates, rtc_configuration
from ingest.membership import Holder
from ingest.sdpcheck import check_answer
from spaces.tokens import Role

if TYPE_CHECKING:
    from ingest.publication import Publication
    from ingest.room import Room

log = logging.getLogger(__name__)


class Channel(Protocol):
    """The participant's signaling socket, as the room sees it."""

    def send(self, message: dict[str, Any] | str) -> None:
        """Queue a message (a dict, or one already JSON-encoded); never blocks the room."""

    def close(self, code: int, reason: str) -> None:
        """Close the socket after what is queued."""


class Participant:
    def __init__(
        self,
        room: Room,
        *,
        identity: str,
        role: Role,
        channel: Channel,
        ice_servers: list[str],
        candidates: CandidatePolicy,
        holder: Holder,
        opus_bitrate: int,
        address: str = "",
    ) -> None:
        self.room = room
        self.identity = identity
        self.role = role
        self.holder = holder
        """Whose name this is in the room (the token it belongs to, its current role)."""
        self.address = address
        """The client's address, as the SFU sees it (banned with the token on removal)."""
        self.candidates = candidates
        self.opus_bitrate = opus_bitrate
        """Opus bit/s this participant's browser is asked to send at, 0: its own (``ingest.bitrate``)."""
        self.channel = channel
        self.joined_at = time.monotonic()
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self.publish: RTCRtpTransceiver | None = None
        self.slot_transceivers: dict[int, RTCRtpTransceiver] = {}
        self.negotiated_slots: set[int] = set()
        self.slot: Slot | None = None
        self.sink: Sink | None = None
        self.muted = False
        self.recorded = True
        """The participant's choice: their voice is recorded when they publish (else only forwarded)."""
        self.hand_raised = False
        self.publication: Publication | None = None
        """What this participant's packets feed while they publish (set by the room)."""
        self.hand_name: str | None = None
        """The name offered with a raised hand, taken on promotion."""
        self.first_rtp_at: float | None = None
        self.rev = 0
        self._awaiting: int | None = None
        self._offered_mids: list[str] = []
        self._publish_mid: str | None = None
        self._dirty = False
        self._lock = asyncio.Lock()
        self._closed = False
        self.pc.on("connectionstatechange", self._on_connection_state)

    @property
    def can_publish(self) -> bool:
        return self.role.can_publish

    # --- negotiation -------------------------------------------------------------

    async def negotiate(self) -> None:
        """Offer what the room has now (or remember to, once the pending answer is in)."""
        if self._closed:
            return
        if self._awaiting is not None or self._lock.locked():
            self._dirty = True
            return
        async with self._lock:
            self._dirty = False
            self._ensure_transceivers()
            if not self.pc.getTransceivers():
                # A listener in a room nobody speaks in yet: an offer without m-lines is
                # refused by browsers (empty BUNDLE group). The first slot brings the first offer.
                return
            offer = await self.pc.createOffer()
            await self.pc.setLocalDescription(offer)
            if self._closed:
                return
            self.rev += 1
            self._awaiting = self.rev
            self._offered_mids = [t.mid for t in self.pc.getTransceivers() if t.mid is not None]
            publishing = self.publish is not None and self.publish.direction == "recvonly"
            self._publish_mid = self.publish.mid if publishing and self.publish is not None else None
            self.channel.send(
                {
                    "type": "offer",
                    "rev": self.rev,
                    "sdp": ask_bitrate(self.pc.localDescription.sdp, self.opus_bitrate, self._publish_mid),
                    "publish_mid": self._publish_mid,
                    "slots": {t.mid: i for i, t in self.slot_transceivers.items()},
                }
            )

    def _ensure_transceivers(self) -> None:
        if self.can_publish and self.publish is None:
            # The publish m-line comes first, so for a joining speaker it is mid 0.
            self.publish = self.pc.addTransceiver("audio", direction="recvonly")
            self._prepare(self.publish)
            take_over_receiver(self.publish.receiver, self._rtp)
        elif self.publish is not None:
            self.publish.direction = "recvonly" if self.can_publish else "inactive"
        for slot in self.room.slots:
            if slot.index not in self.slot_transceivers:
                t = self.pc.addTransceiver("audio", direction="sendonly")
                self._prepare(t)
                park_sender(t.sender, slot.ssrc)
                # Nothing may come in on a forwarding m-line; drop it if it does.
                take_over_receiver(t.receiver, None)
                self.slot_transceivers[slot.index] = t

    def _prepare(self, t: RTCRtpTransceiver) -> None:
        """What every m-line of ours gets: hardened DTLS, bounded candidates, consent by RFC 7675, Opus only."""
        harden_transport(t.receiver.transport)
        guard_remote_candidates(t.receiver.transport.transport, self.candidates)
        keep_consent(t.receiver.transport.transport)
        opus_only(t)

    async def on_answer(self, rev: int, sdp: str) -> None:
        if self._awaiting is None:
            raise OutOfOrder("no offer is waiting for an answer")
        if rev != self._awaiting:
            raise OutOfOrder(f"answer is for offer {rev}, but offer {self._awaiting} is pending")
        check_answer(
            sdp,
            offered_mids=self._offered_mids,
            publish_mid=self._publish_mid,
            max_candidates=self.candidates.max_candidates,
        )
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as e:  # noqa: BLE001 - aiortc raises assorted errors on bad SDP
            raise BadSdp(f"answer rejected: {e}") from e
        self._awaiting = None
        self.negotiated_slots = set(self.slot_transceivers)
        self.room.participant_ready(self)
        if self._dirty:
            await self.negotiate()

    # --- connection --------------------------------------------------------------

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        log.debug("%s: connection %s", self.identity, state)
        if state == "connected":
            transceivers = self.pc.getTransceivers()
            self.sink = sink_for(transceivers[0]) if transceivers else None
            if self.sink is None:
                log.warning("%s: connected but no fast send path", self.identity)
            self.room.participant_ready(self)
        elif state in ("failed", "closed") and not self._closed:
            self.room.participant_gone(self, reason=f"connection {state}")

    @property
    def connected(self) -> bool:
        return self.sink is not None

    def _rtp(self, packet: RtpPacket) -> None:
        if packet.payload_type != OPUS_PAYLOAD_TYPE:
            return
        if self.first_rtp_at is None:
            self.first_rtp_at = time.monotonic()
        publication = self.publication
        if publication is not None:
            publication.on_packet(packet)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.sink = None
        await self.pc.close()
