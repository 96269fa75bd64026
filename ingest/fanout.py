"""A slot's listeners, as one call into C: protect and send one packet to each of them.

Per listener packet the Python loop spends a closure call, a slice copy
into pylibsrtp's buffer, the cffi call and ``socket.sendto`` around the
encryption and the system call that do the work. ``ingest._fanout`` (built from
``ingest/fanout_build.py`` by the project's install) runs that loop in C:
one call per packet per slot, whatever the number of listeners.

What stays in Python is what is rare: a listener whose socket buffer is full
gets the packet already protected through its asyncio transport's queue
(libsrtp refuses to protect the same index twice, so it must not be
protected again), and a failed protect or send counts in that sink's
``errors``, as on the Python path.

Each native listener is a ``Target``: a strong reference to its SRTP
session (C holds the session's raw pointer) and its own ``dup`` of the
ICE socket's file descriptor. aioice may close its socket while a slot
still lists the listener; had C kept aioice's fd number, the kernel could
give that number to the next socket opened (a websocket, a file) and the
listener's packets would go there. The dup keeps the socket itself open
until the ``Target`` is dropped (``weakref.finalize`` closes it, also when
it is collected), so a stale listener's packets go where they always went.

Without the compiled module (no C compiler at install) the SFU logs one
warning and uses ``Sink.send``, the Python loop; both give the same bytes.
``SPACES_SFU_FANOUT=python`` chooses the Python loop (to compare them).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.fastpath import Sink

log = logging.getLogger(__name__)

#: pylibsrtp's buffer (1500 bytes) less its SRTP trailer room: longer packets
#: are refused on both paths (each listener counts an error).
MAX_PACKET = 1500 - 144
_PROTECT_ARGS = ("struct srtp_ctx_t_ *", "void *", "int *")


def _load() -> Any:
    """The compiled module, wired to pylibsrtp's own ``srtp_protect``; None if it is not built."""
    try:
        from pylibsrtp import _binding

        import ingest._fanout as _fanout
    except ImportError:
        return None
    protect = _binding.ffi.addressof(_binding.lib, "srtp_protect")
    # C calls it through a pointer cast, unchecked: a pylibsrtp carrying another libsrtp (3's
    # srtp_protect takes six arguments) would corrupt memory there, so only this signature is taken.
    kind = _binding.ffi.typeof(protect)
    if kind.result.cname != "srtp_err_status_t" or [a.cname for a in kind.args] != list(_PROTECT_ARGS):
        log.warning("pylibsrtp's srtp_protect is %s, not libsrtp 2's: the SFU uses the Python loop", kind.cname)
        return None
    # A module built from an older source (the install rebuilds it when the source changes; a copy by
    # hand may not) may lack the constant: its functions' signatures may differ too.
    if getattr(_fanout.lib, "FANOUT_MAX_PACKET", None) != MAX_PACKET:
        log.warning("ingest._fanout is stale (rebuild it: python -m ingest.fanout_build): the Python loop is used")
        return None
    _fanout.lib.fanout_init(int(_binding.ffi.cast("uintptr_t", protect)))
    return _fanout


_native: Any = _load()
_mode = "c"
_warned = False


def configure(mode: str) -> bool:
    """``c``: the compiled loop if it is built (else one warning); ``python``: the Python loop. True if C."""
    global _mode
    _mode = mode
    if mode == "c" and _native is None:
        _warn_missing()
    return native()


def _warn_missing() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "ingest._fanout is not built (no C compiler at install?): the SFU forwards with the Python loop,"
            " at more CPU per listener; reinstall the project with gcc and Python headers present"
        )


def native() -> bool:
    """Whether new sinks get the C path."""
    return _mode == "c" and _native is not None


class Target:
    """One listener as the C loop sees it: session pointer, own fd, destination address."""

    __slots__ = ("session", "fd", "struct", "_close", "__weakref__")

    def __init__(self, session: Any, fd: int, struct: Any) -> None:
        self.session = session
        """pylibsrtp's ``Session``: alive as long as C may use its pointer."""
        self.fd = fd
        self.struct = struct
        self._close = weakref.finalize(self, os.close, fd)

    @classmethod
    def create(cls, session: Any, sock: Any, addr: Any) -> Target | None:
        """A target for ``session`` sending on ``sock`` (anything with ``fileno()``) to ``addr``; None where
        only Python can: the module missing or not chosen, an address or session it cannot take."""
        if _mode != "c":
            return None
        if _native is None:
            _warn_missing()
            return None
        try:
            srtp = session._srtp[0]
            ip = ipaddress.ip_address(addr[0].split("%")[0])
            port = int(addr[1])
        except (AttributeError, TypeError, ValueError, IndexError):
            return None
        ffi, lib = _native.ffi, _native.lib
        struct = ffi.new("fanout_target *")
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        flowinfo, scope = (int(addr[2]), int(addr[3])) if len(addr) >= 4 else (0, 0)
        if lib.fanout_set_address(struct, family, ip.packed, len(ip.packed), port, flowinfo, scope) != 0:
            return None
        try:
            fd = os.dup(sock.fileno())
        except OSError as e:
            if e.errno != errno.EBADF:  # not a socket closed meanwhile: out of fds (EMFILE), say so
                log.warning("no fd for a listener's C fan-out (%s): it uses the Python loop", e)
            return None
        struct.session = srtp
        struct.fd = fd
        return cls(session, fd, struct)


class Fanout:
    """The sinks one packet goes to: the native ones in one C call, the others one by one."""

    __slots__ = ("_sinks", "_native_sinks", "_python", "_array", "_scratch", "_status", "_length")

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self._sinks = tuple(sinks)
        natives = tuple(s for s in self._sinks if s.native is not None)
        self._native_sinks = natives
        """Kept here, so each target's fd and session outlive the array that names them."""
        self._python = tuple(s.send for s in self._sinks if s.native is None)
        if natives:
            ffi = _native.ffi
            self._array = ffi.new("fanout_target[]", len(natives))
            for i, sink in enumerate(natives):
                assert sink.native is not None
                self._array[i] = sink.native.struct[0]
            self._scratch = ffi.new("unsigned char[]", _native.lib.FANOUT_SCRATCH)
            self._status = ffi.new("int *")
            self._length = ffi.new("int *")

    def __len__(self) -> int:
        return len(self._sinks)

    def send(self, packet: bytes) -> None:
        natives = self._native_sinks
        if natives:
            # A packet over MAX_PACKET is refused by C itself, each native sink counting an error.
            count = len(natives)
            size = len(packet)
            send = _native.lib.fanout_send
            i = send(self._array, 0, count, packet, size, self._scratch, self._status, self._length)
            while i < count:
                self._rare(natives[i])
                i = send(self._array, i + 1, count, packet, size, self._scratch, self._status, self._length)
        for python_send in self._python:
            python_send(packet)

    def _rare(self, sink: Sink) -> None:
        """What C left to us for one sink: queue the protected bytes, or count an error."""
        if self._status[0] == _native.lib.FANOUT_AGAIN:
            data = bytes(_native.ffi.buffer(self._scratch, self._length[0]))
            sink.transport_sendto(data, sink.addr)
        else:
            sink.errors += 1
