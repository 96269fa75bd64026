"""A small TCP proxy that can make an endpoint go away and come back.

moto's server keeps its objects in memory, so stopping it would lose the
data a real S3 outage keeps. Instead the workers talk to moto through this
proxy, and :meth:`TcpProxy.cut` models the endpoint going away: the
listening socket is closed (new connections are refused, as when the server
process is down) and every open connection is reset (as when it dies with
requests in flight). :meth:`TcpProxy.restore` listens again on the same port.

Plain threads and blocking sockets: a handful of connections on loopback.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import struct
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

#: Ports below Linux's ephemeral range (32768-60999 by default): while the
#: proxy is cut nothing else listens on its port, and no outgoing
#: connection is handed it as a local port, so it can be bound again.
_STABLE_PORTS = range(20_000, 32_000)


def stable_port() -> int:
    """A free loopback port that the kernel does not hand out by itself."""
    for port in random.sample(_STABLE_PORTS, 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int, *, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or stable_port()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self.connections = 0
        """Connections accepted so far (a test can check traffic went through)."""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy-accept").start()

    def cut(self) -> None:
        """The endpoint goes away: refuse new connections, reset the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._open = self._open, set()
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            _reset(conn)
        log.info("proxy :%d cut (%d connections reset)", self.port, len(conns))

    def restore(self) -> None:
        self.start()
        log.info("proxy :%d restored", self.port)

    def stop(self) -> None:
        self.cut()

    @contextlib.contextmanager
    def running(self) -> Iterator[TcpProxy]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut: this listener is closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut between accept() and here
                    _reset(client)
                    _reset(upstream)
                    continue
                self._open |= {client, upstream}
                self.connections += 1
            pair = _Pair(self, client, upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=pair.pump, args=(src, dst), daemon=True, name="proxy-pump").start()

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(socks)


class _Pair:
    """One proxied connection: two pumps, closed when both are done."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.socks = (client, upstream)
        self._lock = threading.Lock()
        self._done = 0

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            # A clean end of one direction: pass the half-close on.
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            # Reset by cut(), or by either end: the other end sees a reset too.
            self._close(reset=True)
            return
        with self._lock:
            self._done += 1
            both = self._done == 2
        if both:
            self._close(reset=False)

    def _close(self, *, reset: bool) -> None:
        self.proxy._forget(*self.socks)
        for sock in self.socks:
            if reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with an RST, as a crashed peer would, rather than a polite FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # SHUT_RD sends nothing but wakes a pump thread blocked in recv() on this
    # socket (close() from another thread would not); close() then sends the RST.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()
