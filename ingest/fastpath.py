"""The one place that reaches into aiortc internals, so forwarding costs what it must.

Stock aiortc decodes every received packet (jitter buffer + decoder thread)
and encodes, or at best re-packs, every sent packet per sender task: about
100-130 us per forwarded packet (DESIGN.md). An SFU needs neither, so:

- receiving: the receiver's ``_handle_rtp_packet`` is replaced by ours (the
  hook aiortc's maintainer suggests for raw RTP, aiortc issue #55); packets
  arrive SRTP-decrypted and parsed, and never reach the jitter buffer or the
  decoder;
- sending: a ``Sink`` holds a listener's SRTP session and its selected ICE
  socket; the room builds each RTP packet once and, per listener, only
  protects and sends it (``Sink.send``; for all of a slot's listeners in
  one call into C: ``ingest.fanout``);
- the stock sender of each forwarding transceiver is kept for the SDP (its
  SSRC) and the receiver reports it takes in, but given an ``IdleTrack``, so
  its RTP task waits forever instead of polling every 20 ms, and its RTCP
  task sends no sender reports (``park_sender``);
- the DTLS transport's receive step is guarded (``harden_transport``), so a
  stray datagram on the media port is dropped instead of ending the
  connection.

These attributes (``RTCDtlsTransport._tx_srtp``, aioice's ``_nominated``
pair) are private; the versions are pinned (aiortc 1.16) and the tests
exercise this path end to end, so a change shows up as a failing test.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.rtp import RtpPacket

from ingest.fanout import Target

log = logging.getLogger(__name__)

#: What the SFU offers: Opus only, at aiortc's payload type, with the
#: ssrc-audio-level extension (RFC 6464) at aiortc's id. The SFU makes every
#: offer, so every participant's answer uses these same numbers, and one
#: packet built per speaker suits every listener.
OPUS_PAYLOAD_TYPE = 96
AUDIO_LEVEL_EXT_ID = 2
OPUS = RTCRtpCodecCapability(mimeType="audio/opus", clockRate=48000, channels=2)

RtpHandler = Callable[[RtpPacket], None]


class IdleTrack(MediaStreamTrack):
    """A track that never yields a frame: parks a stock sender's RTP task."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recv(self) -> Any:
        await self._never
        raise MediaStreamError  # pragma: no cover - the future is never resolved

    def stop(self) -> None:
        if not self._never.done():
            self._never.cancel()
        super().stop()


def opus_only(transceiver: RTCRtpTransceiver) -> None:
    """Offer Opus alone: a peer that cannot do Opus fails negotiation, clearly."""
    transceiver.setCodecPreferences([OPUS])


def take_over_receiver(receiver: RTCRtpReceiver, handler: RtpHandler | None) -> None:
    """Route the receiver's RTP to ``handler`` (or drop it) instead of its decoder."""

    async def _handle(packet: RtpPacket, arrival_time_ms: int = 0) -> None:
        if handler is not None:
            handler(packet)

    setattr(receiver, "_handle_rtp_packet", _handle)  # noqa: B010 - replacing a method on one instance


def harden_transport(dtls: RTCDtlsTransport) -> None:
    """Drop a datagram aiortc cannot handle instead of closing the connection.

    aioice hands every datagram that reaches a peer connection's port, from
    any address, to the DTLS transport, whose receive loop ends (and with it
    the peer connection) on any exception but a failed SRTP check. So one
    empty datagram (``IndexError``) or one of 1500 bytes or more in the SRTP
    range (``ValueError``: too long for libsrtp's buffer), sent by anyone who
    knows the port, would disconnect a participant; so would an
    authenticated packet with a malformed audio-level element
    (``struct.error`` in aiortc's RTP parser). Each step of the loop reads
    one datagram, so dropping the failed step drops just that datagram.
    """
    if getattr(dtls, "_hardened", False):
        return
    receive_next = dtls._recv_next

    async def _recv_next() -> None:
        try:
            await receive_next()
        except (IndexError, ValueError, struct.error) as e:
            log.debug("dropped a datagram aiortc could not handle: %r", e)

    setattr(dtls, "_recv_next", _recv_next)  # noqa: B010 - replacing a method on one instance
    setattr(dtls, "_hardened", True)  # noqa: B010


def park_sender(sender: RTCRtpSender, ssrc: int) -> None:
    """Make a stock sender announce ``ssrc`` in the SDP and never send RTP or RTCP itself.

    Its RTCP task would send a sender report per listener about every second
    with the counts of a sender that never sent (zero packets, a stale
    timestamp): wrong information, and 2.8 % of the node's CPU at 500
    listeners. Receivers need no sender report to play audio (it serves
    lip sync and round-trip estimates), so the task is parked too. The
    sender still takes the listener's receiver reports (``_handle_rtcp_packet``), which nothing reads.
    """
    sender._ssrc = ssrc
    sender.replaceTrack(IdleTrack())
    # The name-mangled events stock ``stop()`` waits on: set as the real task would. Another aiortc may
    # name them otherwise: then the stock task runs (wrong reports, but a working negotiation).
    started = getattr(sender, "_RTCRtpSender__rtcp_started", None)
    exited = getattr(sender, "_RTCRtpSender__rtcp_exited", None)
    if started is None or exited is None:
        log.debug("aiortc's RTCRtpSender has no __rtcp_started/__rtcp_exited: its RTCP task is not parked")
        return

    async def _run_rtcp() -> None:
        started.set()
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            pass
        exited.set()

    setattr(sender, "_run_rtcp", _run_rtcp)  # noqa: B010 - replacing a method on one instance


class Sink:
    """One listener's way out: SRTP-protect a plain RTP packet and send it.

    Per packet this is one libsrtp call and one ``sendto`` syscall. The
    socket is written directly; only when the kernel buffer is full does
    the packet go through the asyncio transport, which queues it.
    ``send`` is the Python path; with ``native`` (``ingest.fanout``) a slot
    does the same for all its native sinks in one call into C, and this
    sink's ``transport_sendto`` and ``errors`` serve for the rare cases.
    """

    __slots__ = ("protect", "sock_sendto", "transport_sendto", "addr", "errors", "native")

    def __init__(
        self,
        protect: Callable[[bytes], bytes],
        sock_sendto: Callable[[bytes, Any], int] | None,
        transport_sendto: Callable[[bytes, Any], None],
        addr: Any,
        *,
        native: Target | None = None,
    ) -> None:
        self.protect = protect
        self.sock_sendto = sock_sendto
        self.transport_sendto = transport_sendto
        self.addr = addr
        self.errors = 0
        self.native = native

    def send(self, packet: bytes) -> None:
        try:
            data = self.protect(packet)
        except Exception:  # noqa: BLE001 - one bad listener must not stop the fan-out
            self.errors += 1
            return
        try:
            if self.sock_sendto is None:
                self.transport_sendto(data, self.addr)
            else:
                self.sock_sendto(data, self.addr)
        except BlockingIOError:
            self.transport_sendto(data, self.addr)
        except Exception:  # noqa: BLE001
            self.errors += 1


def lean_protect(session: Any) -> Callable[[bytes], bytes]:
    """``Session.protect`` without its per-call allocations (same libsrtp call).

    pylibsrtp allocates a length cell and re-checks types on every call; at
    hundreds of listeners that wrapper costs more than the encryption.
    Falls back to the public method if the session's layout is not the one
    this was written against (pylibsrtp 1.0).
    """
    try:
        from pylibsrtp import Error, _binding

        srtp = session._srtp[0]
        cdata = session._cdata
        buffer = session._buffer
        capacity = len(cdata) - 144  # SRTP_MAX_TRAILER_LEN
        len_p = _binding.ffi.new("int *")
        func = _binding.lib.srtp_protect
    except (ImportError, AttributeError):
        protect: Callable[[bytes], bytes] = session.protect
        return protect

    def _protect(packet: bytes, _owner: Any = session) -> bytes:
        # ``_owner`` keeps the session alive as long as this closure: the raw
        # ``srtp`` pointer is freed with the session, and a sink can outlive
        # its peer connection by a packet or two.
        n = len(packet)
        if n > capacity:
            raise ValueError("packet is too long")
        len_p[0] = n
        buffer[0:n] = packet
        if func(srtp, cdata, len_p) != 0:
            raise Error("srtp_protect failed")
        out: bytes = buffer[0 : len_p[0]]
        return out

    return _protect


def sink_for(transceiver: RTCRtpTransceiver) -> Sink | None:
    """The fast send path of a connected peer connection, or None if not ready."""
    dtls = transceiver.sender.transport
    srtp = getattr(dtls, "_tx_srtp", None)
    connection = getattr(dtls.transport, "_connection", None)
    nominated = getattr(connection, "_nominated", {}) if connection is not None else {}
    pair = nominated.get(1)
    if srtp is None or pair is None or dtls.state != "connected":
        return None
    udp = getattr(pair.protocol, "transport", None)
    if udp is None:
        return None
    sock = getattr(udp, "_sock", None)
    # uvloop's transport has no ``_sock``, but names its socket (a stand-in with the fd): enough for C.
    named = udp.get_extra_info("socket")
    native = Target.create(srtp, named, pair.remote_addr) if named is not None else None
    return Sink(lean_protect(srtp), getattr(sock, "sendto", None), udp.sendto, pair.remote_addr, native=native)
