"""The SFU's UDP sockets: drained reads, control before media, batched sends.

asyncio's selector datagram transport reads **one** datagram per readable
socket per event-loop turn. A socket with a backlog of N media packets
therefore needs N turns to reach the STUN consent check, DTLS record or
RTCP report queued behind them, and a turn is as long as everything else
the loop does (hundreds of peer connections, the fan-out, signaling). aioice
gives a consent check one try of 500 ms (``retransmissions=0``) and ends the
connection after six failures in a row, so a loop that falls behind for
~30 s cuts a speaker off even though no packet was ever dropped (our own
connections now judge consent by RFC 7675's window: ``ingest.consent``).

``install()`` makes every aioice socket of this process:

- **drained**: one readiness callback reads up to ``DRAIN_BATCH`` datagrams
  (bounded, so one hot socket cannot hold the loop), on asyncio's own
  loop; uvloop's libuv transport already reads up to 32 per callback;
- **control first**: of what one callback read, STUN, DTLS and RTCP are
  handed to aioice before the RTP, and in aioice's receive queue they go
  ahead of any RTP still waiting (``ControlFirstQueue``);
- optionally **tapped**: a ``media_tap`` may take RTP datagrams before
  aioice sees them (the bench's listeners count them from the clear RTP
  header, without decrypting; the SFU installs none).

Classification is by first byte (RFC 7983): 0-3 STUN, 20-63 DTLS, 128-191
RTP or RTCP (RTCP when the second byte is a payload type 192-223, RFC 5761).

``sendmmsg`` sends several datagrams on one socket in one system call
(Linux, via ctypes), with a plain ``sendto`` loop as the fallback.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import ctypes.util
import logging
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: Datagrams one readiness callback reads at most from one socket.
DRAIN_BATCH = 64
#: Large enough for any datagram aioice accepts (it uses asyncio's default too).
MAX_DATAGRAM = 65536

#: ``media_tap(data, addr) -> bool``: True when it consumed the RTP datagram.
MediaTap = Callable[[bytes, Any], bool]


def is_media(data: bytes) -> bool:
    """RTP (not RTCP): the only traffic that may wait behind the rest."""
    return len(data) >= 2 and 128 <= data[0] <= 191 and not 192 <= data[1] <= 223


class ControlFirstQueue(asyncio.Queue[Any]):
    """aioice's receive queue with two lanes: anything that is not RTP is served first.

    Items are aioice's ``(data, component)`` tuples, or ``None`` (the
    connection is lost), which is control too.
    """

    def _init(self, maxsize: int) -> None:
        self._queue: collections.deque[Any] = collections.deque()
        self._control: collections.deque[Any] = collections.deque()

    def _put(self, item: Any) -> None:
        if item is None or not is_media(item[0]):
            self._control.append(item)
        else:
            self._queue.append(item)

    def _get(self) -> Any:
        return self._control.popleft() if self._control else self._queue.popleft()

    def qsize(self) -> int:
        return len(self._queue) + len(self._control)

    def empty(self) -> bool:
        return not self._queue and not self._control


def drained_reader(transport: Any, protocol: asyncio.DatagramProtocol, *, media_tap: MediaTap | None = None) -> Any:
    """The readiness callback for one selector datagram transport (see the module doc)."""
    sock: socket.socket = transport._sock
    recvfrom = sock.recvfrom
    received = protocol.datagram_received

    def _read_ready() -> None:
        if transport._conn_lost:
            return
        media: list[tuple[bytes, Any]] = []
        try:
            for _ in range(DRAIN_BATCH):
                data, addr = recvfrom(MAX_DATAGRAM)
                if len(data) >= 2 and 128 <= data[0] <= 191 and not 192 <= data[1] <= 223:
                    if media_tap is None or not media_tap(data, addr):
                        media.append((data, addr))
                else:
                    received(data, addr)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            protocol.error_received(exc)
        finally:
            for data, addr in media:
                received(data, addr)

    return _read_ready


def take_over_socket(transport: Any, protocol: asyncio.DatagramProtocol, *, media_tap: MediaTap | None = None) -> bool:
    """Read ``transport``'s socket with ``drained_reader``; False where the loop does its own reads (uvloop)."""
    loop = transport._loop if hasattr(transport, "_loop") else None
    if loop is None or not hasattr(transport, "_sock_fd") or not hasattr(loop, "_add_reader"):
        return False
    if transport._conn_lost or transport._sock is None:
        return False
    loop._add_reader(transport._sock_fd, drained_reader(transport, protocol, media_tap=media_tap))
    return True


def control_first(connection: Any) -> None:
    """Give an aioice ``Connection`` a ``ControlFirstQueue`` (before anything waits on it)."""
    old = connection._queue
    if isinstance(old, ControlFirstQueue):
        return
    new = ControlFirstQueue()
    while not old.empty():
        new.put_nowait(old.get_nowait())
    connection._queue = new


_installed = False


def install() -> None:
    """Drain and prioritise the sockets of every aioice connection made from now on (idempotent)."""
    global _installed
    if _installed:
        return
    from aioice.ice import StunProtocol

    original = StunProtocol.connection_made

    def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
        original(self, transport)
        control_first(self.receiver)
        # asyncio adds the transport's own reader right after this call; replace it after that.
        asyncio.get_running_loop().call_soon(take_over_socket, transport, self)

    setattr(StunProtocol, "connection_made", connection_made)  # noqa: B010 - one documented hook
    _installed = True


# --- batched sends -----------------------------------------------------------------------


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _load_sendmmsg() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.POINTER(_Mmsghdr), ctypes.c_uint, ctypes.c_int]
    func.restype = ctypes.c_int
    return func


_SENDMMSG = _load_sendmmsg()
_MSG_DONTWAIT = 0x40


def _sockaddr_in(addr: tuple[str, int]) -> bytes:
    """``struct sockaddr_in`` for an IPv4 address (family, port, address, padding)."""
    return struct.pack("=HH4s8x", socket.AF_INET, socket.htons(addr[1]), socket.inet_aton(addr[0]))


def have_sendmmsg() -> bool:
    return _SENDMMSG is not None


def sendmmsg(sock: socket.socket, datagrams: Sequence[tuple[bytes, tuple[str, int]]]) -> int:
    """Send ``datagrams`` (data, IPv4 address) on ``sock``; returns how many went.

    One system call where the platform has ``sendmmsg``; otherwise, or for
    an address that is not IPv4, one ``sendto`` each. Stops at the first
    datagram the kernel would block on (the caller decides what to do with
    the rest), like ``sendto`` raising ``BlockingIOError``.
    """
    n = len(datagrams)
    if n == 0:
        return 0
    if _SENDMMSG is None or sock.family != socket.AF_INET:
        return _sendto_each(sock, datagrams)
    msgs = (_Mmsghdr * n)()
    iovs = (_Iovec * n)()
    keep: list[Any] = []
    names: dict[tuple[str, int], Any] = {}
    for i, (data, addr) in enumerate(datagrams):
        buf = ctypes.create_string_buffer(data, len(data))
        keep.append(buf)
        name = names.get(addr)
        if name is None:
            name = names[addr] = ctypes.create_string_buffer(_sockaddr_in(addr), 16)
        iovs[i].iov_base = ctypes.cast(buf, ctypes.c_void_p)
        iovs[i].iov_len = len(data)
        hdr = msgs[i].msg_hdr
        hdr.msg_name = ctypes.cast(name, ctypes.c_void_p)
        hdr.msg_namelen = 16
        hdr.msg_iov = ctypes.pointer(iovs[i])
        hdr.msg_iovlen = 1
    sent = _SENDMMSG(sock.fileno(), msgs, n, _MSG_DONTWAIT)
    if sent < 0:
        err = ctypes.get_errno()
        if err in (11, 4):  # EAGAIN/EWOULDBLOCK, EINTR: nothing went
            return 0
        raise OSError(err, "sendmmsg failed")
    return int(sent)


def _sendto_each(sock: socket.socket, datagrams: Sequence[tuple[bytes, Any]]) -> int:
    sent = 0
    for data, addr in datagrams:
        try:
            sock.sendto(data, addr)
        except BlockingIOError:
            break
        sent += 1
    return sent
