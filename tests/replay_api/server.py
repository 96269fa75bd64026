"""The app served by a real uvicorn, for clients that need real HTTP (browsers, raw sockets)."""

from __future__ import annotations

import threading

import uvicorn
from fastapi import FastAPI

from tests.support.services import free_port, wait_for_port


class LiveServer:
    """uvicorn serving an app object in a thread, on a free loopback port."""

    def __init__(self, app: FastAPI, *, log_level: str = "warning") -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level=log_level))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
