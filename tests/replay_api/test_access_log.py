"""Tokens never reach the access log, whatever URL carries them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from replay_api.accesslog import ACCESS_LOGGER, REDACTED, redact
from spaces.models import Visibility
from tests.support.replay import Recording, publish, token_for

from .server import LiveServer


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def access_log() -> Iterator[Lines]:
    """What uvicorn's access logger writes (attach after its Config set logging up)."""
    handler = Lines()
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_tokens_are_redacted_from_uvicorn_access_log(local_app: FastAPI, recording: Recording) -> None:
    space = publish(
        local_app.state.catalog, local_app.state.blobs, recording, space_id="hushed", visibility=Visibility.PRIVATE
    )
    token = token_for(local_app.state.settings, space.space_id)
    paths = [
        f"/spaces/{space.space_id}/replay?token={token}",
        f"/spaces/{space.space_id}/audio?format=ogg&token={token}",
        f"/spaces/{space.space_id}/transcript?token={token}&from=1",
        f"/spaces/{space.space_id}/live?token={token}",
        f"/search?q=queen&TOKEN={token}",
    ]
    server = LiveServer(local_app, log_level="info")
    with access_log() as lines, server, httpx.Client(base_url=server.url) as http:
        for path in paths:
            assert http.get(path).status_code == 200, path
        # A token that is no token at all is kept out too (a typo is still someone's secret).
        assert http.get(f"/spaces/{space.space_id}?token=not-a-token").status_code == 401
    logged = "\n".join(lines.lines)
    assert len(lines.lines) == len(paths) + 1, logged
    assert token not in logged and "not-a-token" not in logged
    for path in paths:
        assert path.replace(token, REDACTED) in logged, logged
    assert f"/spaces/{space.space_id}?token={REDACTED}" in logged


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/a?token=abc", f"/a?token={REDACTED}"),
        ("/a?x=1&token=abc&y=2", f"/a?x=1&token={REDACTED}&y=2"),
        ("/a?access_token=abc#t=3", f"/a?access_token={REDACTED}#t=3"),
        ("/a?tokens=abc&notoken=1", "/a?tokens=abc&notoken=1"),
        ("/a/token=abc", "/a/token=abc"),
    ],
)
def test_redact_replaces_only_token_parameters(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_installing_twice_filters_once(local_app: FastAPI) -> None:
    from replay_api.app import create_app

    create_app(local_app.state.settings)
    filters = [f for f in logging.getLogger(ACCESS_LOGGER).filters if type(f).__name__ == "RedactTokens"]
    assert len(filters) == 1
