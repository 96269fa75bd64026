"""OWASP API1 (broken object-level authorization): every route that takes a space id.

The routes are discovered from the app itself, so a route added later
without access control fails here: each one must be listed in ``CALLS`` with
a request that would succeed for its owner, and then, for a private space,

* no token is a 404, word for word what a missing space gets;
* a forged or expired token is a 401;
* a valid token for another space is a 404 too, word for word;
* a valid token for the space (``Authorization: Bearer`` or ``?token=``)
  gets a 2xx (or the 307 to a presigned S3 URL).

The live router's routes are swept too: joining a private live space takes
a token of that space like reading its replay does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount

from spaces import tokens
from spaces.models import Space, SpaceState, Visibility
from tests.support.replay import Recording, publish, token_for

WINDOW = {"start": "4", "end": "6"}


@dataclass(frozen=True)
class Call:
    """A request its owner would make: on which private space, with what."""

    space: str = "ready"
    """``ready`` (a processed replay) or ``live`` (a space not yet ended)."""
    query: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    path: dict[str, str] = field(default_factory=dict)
    """Path parameters other than the space id (an HLS object's name)."""


#: Every (method, path) that takes a space id. A new one must be added here.
CALLS: dict[tuple[str, str], Call] = {
    ("GET", "/spaces/{space_id}"): Call(),
    ("GET", "/spaces/{space_id}/audio"): Call(query={"format": "m4a"}),
    ("HEAD", "/spaces/{space_id}/audio"): Call(),
    ("GET", "/spaces/{space_id}/captions.vtt"): Call(),
    ("GET", "/spaces/{space_id}/captions.srt"): Call(),
    ("GET", "/spaces/{space_id}/transcript"): Call(query={"from": "1", "to": "5"}),
    ("GET", "/spaces/{space_id}/clip"): Call(query=WINDOW),
    ("GET", "/spaces/{space_id}/clip/audio"): Call(query=WINDOW),
    ("GET", "/spaces/{space_id}/clip/captions.vtt"): Call(query=WINDOW),
    ("GET", "/spaces/{space_id}/replay"): Call(query={"t": "3"}),
    ("GET", "/spaces/{space_id}/live"): Call(space="live"),
    ("GET", "/spaces/{space_id}/live/captions"): Call(),
    ("GET", "/spaces/{space_id}/hls/{name}"): Call(path={"name": "master.m3u8"}),
    ("HEAD", "/spaces/{space_id}/hls/{name}"): Call(path={"name": "master.m3u8"}),
    ("POST", "/spaces/{space_id}/tokens"): Call(space="live", json={"role": "listener"}),
}

#: Routes that need the host's (or that speaker's own) token and change the space
#: (delete, erase, retention), or hand out a speaker's data: a listener's token must
#: not open them, so the sweep's "its token gets 2xx" does not apply. Their access
#: rules (no token, a listener's, another space's, another speaker's link, expired,
#: forged) are checked in tests/workers/test_privacy.py.
SWEPT_ELSEWHERE = {
    ("DELETE", "/spaces/{space_id}"),
    ("DELETE", "/spaces/{space_id}/speakers/{speaker}"),
    ("POST", "/spaces/{space_id}/erasure-link"),
    ("GET", "/spaces/{space_id}/export"),
    ("PUT", "/spaces/{space_id}/retention"),
}


def route_table(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every HTTP and WebSocket route, however routers were included.

    FastAPI releases that include routers lazily list them as one entry each
    in ``app.routes``; ``iter_route_contexts`` flattens those where it exists.
    """
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: list[Any] = list(flatten(app.routes)) if flatten is not None else list(app.routes)
    for route in routes:
        path = getattr(route, "path", None)
        if path is None or isinstance(getattr(route, "original_route", route), Mount):
            continue
        methods = getattr(route, "methods", None) or {"WEBSOCKET"}
        for method in sorted(methods):
            yield method, path


def test_every_route_with_a_space_id_is_swept(local_app: FastAPI) -> None:
    table = set(route_table(local_app))
    assert ("GET", "/spaces/{space_id}") in table, "route discovery found nothing: FastAPI changed?"
    # Any other name for a path parameter would slip past the sweep below.
    params = {p for _, path in table for p in re.findall(r"{([^}:]+)", path)}
    # ``name`` (an HLS object's) is filled in from each route's Call.
    assert params <= {"space_id", "speaker", "name"}, f"path parameters other than space_id: {params - {'space_id'}}"
    with_space = {(m, p) for m, p in table if "{space_id}" in p}
    missing = with_space - CALLS.keys() - SWEPT_ELSEWHERE
    assert not missing, f"routes taking a space id not covered by the access sweep, add them to CALLS: {missing}"
    gone = (CALLS.keys() | SWEPT_ELSEWHERE) - with_space
    assert not gone, f"swept routes that no longer exist: {gone}"


@pytest.fixture
def spaces(app: FastAPI, recording: Recording) -> dict[str, Space]:
    catalog, blobs = app.state.catalog, app.state.blobs
    ready = publish(catalog, blobs, recording, space_id="vault-7kz", title="Vault", visibility=Visibility.PRIVATE)
    live = Space(
        space_id="lair-9xq", title="Lair", host="alice", created_at=time.time(),
        state=SpaceState.CREATED, visibility=Visibility.PRIVATE,
    )  # fmt: skip
    catalog.put_space(live)
    other = publish(catalog, blobs, recording, space_id="open", title="Open")
    return {"ready": ready, "live": catalog.get_space("lair-9xq"), "other": other}


def _request(
    client: TestClient, method: str, path: str, call: Call, space_id: str, token: str | None, *, query: bool = False
) -> Any:
    # Only the token given here: no cookie a page set on an earlier request (test_access covers cookies).
    client.cookies.clear()
    params = dict(call.query)
    headers = {}
    if token is not None and query:
        params["token"] = token
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    url = path.replace("{space_id}", space_id)
    for name, value in call.path.items():
        url = url.replace(f"{{{name}}}", value)
    return client.request(method, url, params=params, headers=headers, json=call.json)


def _same_but_id(a: str, a_id: str, b: str, b_id: str) -> bool:
    return a.replace(a_id, "ID") == b.replace(b_id, "ID")


def test_private_spaces_on_every_route(client: TestClient, app: FastAPI, spaces: dict[str, Space]) -> None:
    settings = app.state.settings
    other = token_for(settings, spaces["other"].space_id)
    failures: list[str] = []

    def expect(label: str, got: int, allowed: set[int]) -> None:
        if got not in allowed:
            failures.append(f"{label}: got {got}, expected one of {sorted(allowed)[:4]}")

    for (method, path), call in CALLS.items():
        space_id = spaces[call.space].space_id
        right = token_for(settings, space_id)
        forged = token_for(settings, space_id, secret="not-the-secret-but-long-enough-for-hs256")
        expired = token_for(settings, space_id, ttl=-30)
        label = f"{method} {path}"

        hidden = _request(client, method, path, call, space_id, None)
        missing = _request(client, method, path, call, "nosuchspace", None)
        expect(f"{label} without a token", hidden.status_code, {404})
        if hidden.status_code != missing.status_code or not _same_but_id(
            hidden.text, space_id, missing.text, "nosuchspace"
        ):
            failures.append(f"{label}: a hidden private space answers unlike a missing one")
        for kind, token, allowed in (
            ("a forged token", forged, {401}),
            ("an expired token", expired, {401}),
        ):
            expect(f"{label} with {kind}", _request(client, method, path, call, space_id, token).status_code, allowed)
        # Another space's valid token opens nothing and tells nothing.
        hidden = _request(client, method, path, call, space_id, other)
        missing = _request(client, method, path, call, "nosuchspace", other)
        expect(f"{label} with another space's token", hidden.status_code, {404})
        if hidden.status_code != missing.status_code or not _same_but_id(
            hidden.text, space_id, missing.text, "nosuchspace"
        ):
            failures.append(f"{label}: another space's token tells a private space from a missing one")
        for in_query in (False, True):
            response = _request(client, method, path, call, space_id, right, query=in_query)
            where = "query" if in_query else "header"
            expect(f"{label} with its token ({where})", response.status_code, set(range(200, 400)))
    assert not failures, "\n".join(failures)


def test_join_tokens_by_role(client: TestClient, app: FastAPI, spaces: dict[str, Space]) -> None:
    """Speakers are invited by the host alone; a listener's token cannot make one."""
    settings = app.state.settings
    den = spaces["live"].space_id
    url = f"/spaces/{den}/tokens"
    listener = token_for(settings, den)
    host = tokens.issue(settings.secret_key, space_id=den, role=tokens.Role.HOST, identity="alice", ttl=60)

    def ask(token: str | None, role: str) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.post(url, json={"role": role}, headers=headers).status_code

    assert ask(None, "speaker") == 404  # private: no token, no space
    assert ask(listener, "speaker") == 403
    assert ask(host, "speaker") == 200
    issued = client.post(url, json={"role": "speaker"}, headers={"Authorization": f"Bearer {host}"}).json()
    claims = tokens.verify(settings.secret_key, issued["token"])
    assert (claims.space_id, claims.role) == (den, tokens.Role.SPEAKER)
    # An ended space issues nothing, even to its host.
    app.state.catalog.set_state(den, SpaceState.READY)
    assert ask(host, "listener") == 409


def test_the_sweep_notices_a_new_route(local_app: FastAPI) -> None:
    """A route added without being listed (and checked) above is found."""

    @local_app.get("/spaces/{space_id}/leak")
    def leak(space_id: str) -> dict[str, str]:
        return {"space_id": space_id}

    assert ("GET", "/spaces/{space_id}/leak") in set(route_table(local_app)) - CALLS.keys()
