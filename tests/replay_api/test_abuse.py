"""Resource consumption: rate limits (429), body size limits (413), page-size and range caps.

Limits are set tight here through ``Settings``, as an operator would; the
body limit is tested through a real uvicorn server and raw sockets, since
"before buffering" is about what crosses the wire, which a test client that
hands the app the whole body at once cannot show.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, get_args
from urllib.parse import parse_qs, urlsplit

import fastapi.routing
import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from replay_api import errors, serving
from replay_api.app import create_app
from replay_api.limits import Limiter, MemoryBuckets, RateLimited, Rule, client_address
from spaces.blobstore.s3 import S3BlobStore
from spaces.exceptions import ConfigError
from spaces.models import Space
from spaces.settings import Settings
from tests.support.clock import ManualClock
from tests.support.replay import Recording, publish
from tests.support.services import REDIS_URL, MotoServer, registered_node

from .server import LiveServer

# --- rate limits -------------------------------------------------------------------

#: One request per second sustained, three at once.
TIGHT = {"search_rate_limit": 60, "search_rate_burst": 3, "token_rate_limit": 60, "token_rate_burst": 3}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture
def tight_app(settings: Settings, recording: Recording, clock: ManualClock) -> FastAPI:
    app = create_app(replace(settings, **TIGHT))  # type: ignore[arg-type]
    app.state.limiter = Limiter(app.state.limiter.rules, MemoryBuckets(clock=clock))
    publish(app.state.catalog, app.state.blobs, recording, space_id="open")
    return app


@pytest.fixture
def tight(tight_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(tight_app, client=("203.0.113.7", 40000), follow_redirects=False) as c:
        yield c


def test_search_is_limited_per_address(tight: TestClient, tight_app: FastAPI, clock: ManualClock) -> None:
    for _ in range(3):
        assert tight.get("/search", params={"q": "queen"}).status_code == 200
    refused = tight.get("/search", params={"q": "queen"})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == {"status": 429, "message": refused.json()["error"]["message"]}
    assert "search" in refused.json()["error"]["message"]
    # Another address has a bucket of its own.
    with TestClient(tight_app, client=("198.51.100.9", 40000)) as other:
        assert other.get("/search", params={"q": "queen"}).status_code == 200
    # Retry-After is honest: not a moment before it, but once it has passed the next search goes through.
    clock.advance(float(refused.headers["retry-after"]) - 0.01)
    assert tight.get("/search", params={"q": "queen"}).status_code == 429
    clock.advance(0.02)
    assert tight.get("/search", params={"q": "queen"}).status_code == 200
    assert tight.get("/search", params={"q": "queen"}).status_code == 429


def test_home_page_search_is_limited_but_browsing_is_not(tight: TestClient) -> None:
    for _ in range(10):
        assert tight.get("/").status_code == 200
        assert tight.get("/spaces").status_code == 200
    for _ in range(2):
        assert tight.get("/", params={"q": "queen"}).status_code == 200
    # Text search in the listing costs like a search, so it takes from the same bucket.
    assert tight.get("/spaces", params={"q": "queen"}).status_code == 200
    page = tight.get("/", params={"q": "queen"})
    assert page.status_code == 429 and page.headers["retry-after"] == "1"
    assert "text/html" in page.headers["content-type"] and "Too many requests" in page.text
    assert tight.get("/spaces", params={"q": "queen"}).status_code == 429
    assert tight.get("/").status_code == 200


def test_zero_means_no_limit(settings: Settings) -> None:
    app = create_app(replace(settings, search_rate_limit=0, search_rate_burst=1))
    with TestClient(app) as client:
        assert {client.get("/search", params={"q": "queen"}).status_code for _ in range(30)} == {200}


@pytest.mark.parametrize("route", ["POST /spaces", "POST /spaces/{space_id}/tokens"])
def test_token_issuance_is_limited(tight: TestClient, tight_app: FastAPI, route: str) -> None:
    """New spaces and join tokens: the live router attaches ``RateLimited("tokens")``."""
    tight_app.state.catalog.put_space(Space(space_id="on-air", title="On air", host="alice", created_at=time.time()))
    path = route.removeprefix("POST ").replace("{space_id}", "on-air")
    body = {"title": "t"} if path == "/spaces" else {"role": "listener"}
    statuses = [tight.post(path, json=body).status_code for _ in range(4)]
    assert statuses[:3] == [statuses[0]] * 3 and statuses[0] in (200, 201)
    assert statuses[-1] == 429


def test_the_dependency_works_on_any_route() -> None:
    """What the live router does to limit its token routes, on a route of its own."""
    app = FastAPI()
    app.state.limiter = Limiter({"tokens": Rule(per_minute=6, burst=2)}, MemoryBuckets())
    errors.install(app)

    @app.post("/spaces/{space_id}/tokens", dependencies=[Depends(RateLimited("tokens"))])
    def issue(space_id: str) -> dict[str, str]:
        return {"token": space_id}

    with TestClient(app) as client:
        statuses = [client.post("/spaces/x/tokens").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        refused = client.post("/spaces/x/tokens")
        # 6 per minute: a token every 10 s.
        assert refused.headers["retry-after"] == "10"
        assert refused.json()["error"]["status"] == 429


def test_bucket_arithmetic() -> None:
    buckets = MemoryBuckets()
    rule = Rule(per_minute=60, burst=3)
    assert [buckets.take_now("a", rule, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take_now("a", rule, 0.0) == pytest.approx(1.0)
    assert buckets.take_now("a", rule, 0.5) == pytest.approx(0.5)
    assert buckets.take_now("a", rule, 1.0) == 0.0
    # Refills to the burst, no further, however long the client was away.
    assert [buckets.take_now("a", rule, 1000.0) for _ in range(4)][-1] == pytest.approx(1.0)
    assert buckets.take_now("b", rule, 1000.0) == 0.0


def test_buckets_are_bounded() -> None:
    buckets = MemoryBuckets(max_buckets=3)
    rule = Rule(per_minute=60, burst=1)
    for i in range(10):
        buckets.take_now(f"k{i}", rule, 0.0)
    assert len(buckets._buckets) == 3


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_by_64(host: str, key: str) -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "client": (host, 1)})
    assert client_address(request) == key


def test_misconfigured_limits_are_refused(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="RATE_LIMIT_STORE"):
        create_app(replace(settings, rate_limit_store="memcached"))
    with pytest.raises(ValueError, match="unknown rate limit"):
        RateLimited("joins")


# --- body size: a real server, raw sockets -----------------------------------------

LIMIT = 64 << 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("bodies") / "data",
        max_body_bytes=LIMIT,
        redis_url=REDIS_URL,
        queue_name=f"test-{uuid.uuid4().hex[:12]}",
    )
    with registered_node(settings, settings.sfu_url), LiveServer(create_app(settings)) as live:
        yield live


def _connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes, bool]:
    """Status, headers and body of one response; and whether the server then closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    try:
        closed = sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        closed = False
    return status, headers, body[:length], closed


def _head(path: str, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_declared_length_over_the_limit_is_refused_before_the_body(server: LiveServer) -> None:
    with _connect(server) as sock:
        # 10 GB announced, not a byte sent (and asked to be told before sending any).
        sock.sendall(_head("/spaces", "Content-Length: 10000000000", "Expect: 100-continue"))
        started = time.monotonic()
        status, headers, body, closed = _read_response(sock)
    assert status == 413, "no 100 Continue: the client is never asked for the body"
    assert time.monotonic() - started < 5
    assert json.loads(body)["error"]["status"] == 413
    assert headers["connection"] == "close" and closed


def test_chunked_body_is_cut_off_at_the_limit(server: LiveServer) -> None:
    chunk = b"x" * (8 << 10)
    with _connect(server) as sock:
        sock.sendall(_head("/spaces", "Transfer-Encoding: chunked"))
        sent = 0
        while sent <= LIMIT:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
        # The body has no end yet (no last chunk): the answer cannot wait for it.
        status, headers, body, closed = _read_response(sock)
    assert status == 413
    assert "larger than" in json.loads(body)["error"]["message"]
    assert headers["connection"] == "close" and closed


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_within_the_limit_are_served(server: LiveServer, chunked: bool) -> None:
    payload = json.dumps({"title": "Within limits"}).encode()
    with _connect(server) as sock:
        if chunked:
            sock.sendall(_head("/spaces", "Transfer-Encoding: chunked", "Connection: close"))
            sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n")
        else:
            sock.sendall(_head("/spaces", f"Content-Length: {len(payload)}", "Connection: close") + payload)
        status, _, body, _ = _read_response(sock)
    assert status == 201, body
    assert json.loads(body)["title"] == "Within limits"


def test_the_limit_is_inclusive(settings: Settings) -> None:
    app = create_app(replace(settings, max_body_bytes=1000))
    body = json.dumps({"title": "edge"}).encode()
    exact = body + b" " * (1000 - len(body))
    with TestClient(app) as client:
        headers = {"Content-Type": "application/json"}
        assert client.post("/spaces", content=exact, headers=headers).status_code == 201
        over = client.post("/spaces", content=exact + b" ", headers=headers)
        assert over.status_code == 413 and over.json()["error"]["status"] == 413
        # Routing comes after: a GET with a body too large is a 413 as well, not a 405.
        assert client.request("GET", "/search?q=x", content=b"x" * 1001).status_code == 413


# --- page sizes, numbers and ranges ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/search", {"q": "queen", "limit": "101"}),
        ("/search", {"q": "queen", "limit": "0"}),
        ("/search", {"q": "queen", "offset": "10001"}),
        ("/search", {"q": "queen", "offset": str(10**30)}),
        ("/spaces", {"limit": str(10**30)}),
        ("/spaces", {"cursor": "WzFlNDAwLCAiYSJd"}),  # [1e400, "a"]
        ("/spaces", {"cursor": "x" * 501}),
        ("/", {"q": "queen", "offset": "10001"}),
    ],
)
def test_page_sizes_are_capped(local_client: TestClient, path: str, params: dict[str, str]) -> None:
    response = local_client.get(path, params=params)
    assert response.status_code in (400, 422), response.text


def test_the_deepest_allowed_page_is_served(local_client: TestClient, local_published: Space) -> None:
    assert local_client.get("/search", params={"q": "queen", "offset": "10000", "limit": "100"}).json()["hits"] == []


def _numeric_query_params(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(path, name) of every number-typed query parameter of a GET route."""
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in list(flatten(app.routes)) if flatten is not None else app.routes:
        dependant = getattr(route, "dependant", None)
        if dependant is None or "GET" not in (getattr(route, "methods", None) or ()):
            continue
        stack = [dependant]
        while stack:
            current = stack.pop()
            stack.extend(current.dependencies)
            for param in current.query_params:
                annotation: Any = param.field_info.annotation
                if {int, float} & {annotation, *get_args(annotation)}:
                    yield route.path, param.alias


#: Values no number parameter should take, least of all with a 500.
HUGE = ["9" * 5000, "1e400", "nan", "-inf", str(10**23), "1e-400x", "0x10"]
REQUIRED = {"q": "queen", "start": "4", "end": "6"}


def test_no_number_parameter_anywhere_takes_absurd_values(local_client: TestClient, local_published: Space) -> None:
    params = sorted(set(_numeric_query_params(local_client.app)))  # type: ignore[arg-type]
    assert ("/search", "limit") in params and ("/spaces/{space_id}/replay", "t") in params
    for path, name in params:
        url = path.replace("{space_id}", local_published.space_id)
        for value in [*HUGE, "-1"]:
            query = {k: v for k, v in REQUIRED.items() if k != name} | {name: value}
            response = local_client.get(url, params=query)
            assert response.status_code < 500, (path, name, value[:20])
            if value in HUGE:
                assert 400 <= response.status_code < 500, (path, name, value[:20], response.status_code)


def test_multi_range_total_is_capped(
    local_client: TestClient, local_published: Space, recording: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each range fine, their sum over the multipart cap: 416, not a huge response in memory."""
    monkeypatch.setattr(serving, "MAX_MULTIPART_BYTES", 1000)
    url = f"/spaces/{local_published.space_id}/audio"
    size = recording.ogg.stat().st_size
    response = local_client.get(url, headers={"Range": "bytes=0-599,2000-2599"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.json()["error"]["status"] == 416
    assert local_client.get(url, headers={"Range": "bytes=0-399,2000-2399"}).status_code == 206


# --- presigned URLs ------------------------------------------------------------------


def test_presigned_urls_carry_the_expiry_we_sign(moto_server: MotoServer, s3_bucket: str) -> None:
    """A leaked replay URL stops working: it is SigV4, signed now, for the seconds asked.

    moto's server enforces neither signatures nor expiry, so what S3 would do
    with the URL is read from the URL itself: AWS refuses a SigV4 URL once
    ``X-Amz-Date`` + ``X-Amz-Expires`` has passed (and any SigV2 URL on new buckets).
    """
    store = S3BlobStore.from_settings(Settings(s3_bucket=s3_bucket, s3_endpoint_url=moto_server.endpoint))
    store.put("spaces/leak/replay.ogg", b"OggS" + bytes(100), content_type="audio/ogg")
    before = datetime.now(UTC).replace(microsecond=0)
    url = store.presigned_url("spaces/leak/replay.ogg", expires=60)
    after = datetime.now(UTC)
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["60"]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed_at <= after
    assert "X-Amz-Signature" in query and "Expires" not in query
    assert httpx.get(url).status_code == 200


@pytest.mark.parametrize("expires", [0, 7 * 24 * 3600 + 1])
def test_presigned_expiries_stay_within_sigv4_limits(moto_server: MotoServer, s3_bucket: str, expires: int) -> None:
    store = S3BlobStore.from_settings(Settings(s3_bucket=s3_bucket, s3_endpoint_url=moto_server.endpoint))
    with pytest.raises(ValueError, match="7 days"):
        store.presigned_url("spaces/leak/replay.ogg", expires=expires)
    assert store.presigned_url("spaces/leak/replay.ogg", expires=7 * 24 * 3600) is not None
