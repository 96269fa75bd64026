"""The API side of live spaces: creating them, join tokens, the live pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from replay_api.app import create_app
from spaces import tokens
from spaces.catalog import open_catalog
from spaces.keys import is_valid_id
from spaces.models import SpaceState
from spaces.settings import Settings
from tests.support.services import free_port, registered_node


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[TestClient, Settings]]:
    with registered_node(settings, "https://sfu.example.test"), TestClient(create_app(settings)) as client:
        yield client, settings


def _create(client: TestClient, **body: object) -> dict[str, object]:
    response = client.post("/spaces", json={"title": "Friday chat", **body})
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


def test_create_space_returns_host_token_and_urls(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    data = _create(client, host="Ada")
    space_id = str(data["space_id"])
    assert is_valid_id(space_id)
    claims = tokens.verify(settings.secret_key, str(data["token"]), space_id=space_id)
    assert claims.role is tokens.Role.HOST and claims.identity == "Ada"
    assert data["rtc_url"] == f"wss://sfu.example.test/spaces/{space_id}/rtc"
    assert str(data["live_url"]).endswith(f"/spaces/{space_id}/live?token={data['token']}")
    catalog = open_catalog(settings)
    space = catalog.get_space(space_id)
    assert space.state is SpaceState.CREATED and space.title == "Friday chat" and space.host == "Ada"


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "x" * 201},
        {"title": "ok", "visibility": "secret"},
        {"title": "ok", "host": ""},
    ],
)
def test_create_space_rejects_bad_input(api: tuple[TestClient, Settings], body: dict[str, object]) -> None:
    client, _ = api
    assert client.post("/spaces", json=body).status_code == 422


#: Every Unicode line break but CR/LF (which were refused already), and C1 controls.
LINE_BREAKS = ["\u0085", "\u2028", "\u2029", "\x0b", "\x0c", "\x9b"]


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKS])
def test_names_and_titles_are_one_line(api: tuple[TestClient, Settings], brk: str) -> None:
    """Names become transcript speakers and ``<v Name>`` caption tags: no line breaks of any kind."""
    client, _ = api
    for body in ({"title": "ok", "host": f"Ada{brk}Lovelace"}, {"title": f"Friday{brk}chat"}):
        refused = client.post("/spaces", json=body)
        assert refused.status_code == 422, body
    space_id = _create(client)["space_id"]
    url = f"/spaces/{space_id}/tokens"
    refused = client.post(url, json={"role": "listener", "identity": f"eve{brk}alice"})
    assert refused.status_code == 422
    # Names in any script stay welcome.
    for name in ("Zoë", "李小龍", "Ada Lovelace", "O'Brien-Smith"):
        assert client.post(url, json={"role": "listener", "identity": name}).json()["identity"] == name


def test_tokens_for_speakers_need_the_host(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    data = _create(client)
    space_id, host_token = str(data["space_id"]), str(data["token"])
    url = f"/spaces/{space_id}/tokens"
    assert client.post(url, json={"role": "speaker", "identity": "Bob"}).status_code == 401
    listener = client.post(url, json={"role": "listener"}).json()
    assert listener["role"] == "listener" and listener["identity"].startswith("listener-")
    as_listener = {"Authorization": f"Bearer {listener['token']}"}
    assert client.post(url, json={"role": "speaker"}, headers=as_listener).status_code == 403
    other = _create(client)
    as_other_host = {"Authorization": f"Bearer {other['token']}"}
    assert client.post(url, json={"role": "speaker"}, headers=as_other_host).status_code == 403
    speaker = client.post(
        url, json={"role": "speaker", "identity": "Bob"}, headers={"Authorization": f"Bearer {host_token}"}
    )
    assert speaker.status_code == 200
    claims = tokens.verify(settings.secret_key, speaker.json()["token"], space_id=space_id)
    assert claims.role is tokens.Role.SPEAKER and claims.identity == "Bob"
    forged = {"Authorization": "Bearer not.a.token"}
    assert client.post(url, json={"role": "listener"}, headers=forged).status_code == 401
    # Nobody but the host gets a token in the host's name.
    host = str(data["identity"])
    assert client.post(url, json={"role": "listener", "identity": host}).status_code == 409
    assert client.post(url, json={"role": "listener", "identity": host}, headers=as_listener).status_code == 409


def test_private_space_is_hidden_without_its_token(api: tuple[TestClient, Settings]) -> None:
    client, _ = api
    data = _create(client, visibility="private")
    space_id = data["space_id"]
    assert client.post(f"/spaces/{space_id}/tokens", json={"role": "listener"}).status_code == 404
    assert client.get(f"/spaces/{space_id}/live").status_code == 404
    auth = {"Authorization": f"Bearer {data['token']}"}
    assert client.post(f"/spaces/{space_id}/tokens", json={"role": "listener"}, headers=auth).status_code == 200
    page = client.get(f"/spaces/{space_id}/live?token={data['token']}")
    assert page.status_code == 200 and "Friday chat" in page.text


def test_live_page_and_listing(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    data = _create(client, title="Morning <show>")
    space_id = str(data["space_id"])
    page = client.get(f"/spaces/{space_id}/live")
    assert page.status_code == 200
    assert (
        "Morning &lt;show&gt;" in page.text
        and f'data-rtc-url="wss://sfu.example.test/spaces/{space_id}/rtc"' in page.text
    )
    assert "wss://sfu.example.test" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert client.get("/static/live.js").status_code == 200
    assert client.get("/static/live.css").status_code == 200
    listing = client.get("/live")
    assert listing.status_code == 200 and f"/spaces/{space_id}/live" in listing.text
    assert "on test-node" in listing.text and 'data-node="test-node"' in listing.text
    assert '<a href="/live" id="live-now">1 live now</a>' in client.get("/").text
    assert client.get("/spaces/nope/live").status_code == 404
    assert client.get("/spaces/bad%20id/live").status_code in (404, 422)


def test_ended_space_gets_no_tokens(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    data = _create(client)
    space_id = str(data["space_id"])
    catalog = open_catalog(settings)
    catalog.set_state(space_id, SpaceState.RECORDED)
    assert client.post(f"/spaces/{space_id}/tokens", json={"role": "listener"}).status_code == 409
    page = client.get(f"/spaces/{space_id}/live")
    assert page.status_code == 200 and "This space has ended" in page.text


def test_spaces_nobody_joins_end_empty_and_leave_the_lists(settings: Settings) -> None:
    """A space nobody joined within ``space_join_timeout`` ends as empty: off /live, the home page, /spaces."""
    settings = replace(settings, space_join_timeout=600)
    with registered_node(settings, "https://sfu.example.test"), TestClient(create_app(settings)) as client:
        stale, fresh = _create(client, title="Abandoned chat"), _create(client, title="Fresh chat")
        catalog = open_catalog(settings)
        # Created eleven minutes ago, as far as the catalog knows (the clock, injected).
        old = catalog.get_space(str(stale["space_id"]))
        catalog.put_space(replace(old, created_at=old.created_at - 660))

        live = client.get("/live").text
        assert "Fresh chat" in live and "Abandoned chat" not in live
        assert catalog.get_space(str(stale["space_id"])).state is SpaceState.EMPTY
        assert "Abandoned chat" not in client.get("/").text and "Fresh chat" in client.get("/").text
        listed = [s["id"] for s in client.get("/spaces").json()["items"]]
        assert str(stale["space_id"]) not in listed and str(fresh["space_id"]) in listed
        tokens_url = f"/spaces/{stale['space_id']}/tokens"
        assert client.post(tokens_url, json={"role": "listener"}).status_code == 409
        assert client.post(f"/spaces/{fresh['space_id']}/tokens", json={"role": "listener"}).status_code == 200
        assert "Nobody joined this space in time" in client.get(f"/spaces/{stale['space_id']}/live").text
        assert "Nobody joined this space" in client.get(f"/spaces/{stale['space_id']}/replay").text


def test_the_live_page_reopens_from_its_cookie_but_never_hands_the_token_out(api: tuple[TestClient, Settings]) -> None:
    """Once the page has moved ?token= out of the address bar, a private page still opens on reload.

    The tab that had the token keeps it in its sessionStorage (live.js); the
    page itself never renders a token it was not given in its address, or a
    listener link opened in the host's browser would join as the host.
    """
    client, settings = api
    data = _create(client, title="Late show", visibility="private", host="Ada")
    space_id, host_token = str(data["space_id"]), str(data["token"])
    first = client.get(f"/spaces/{space_id}/live", params={"token": host_token})
    assert first.status_code == 200 and "httponly" in first.headers["set-cookie"].lower()
    reload = client.get(f"/spaces/{space_id}/live")
    assert reload.status_code == 200 and host_token not in reload.text
    client.cookies.clear()
    assert client.get(f"/spaces/{space_id}/live").status_code == 404


def test_redis_unreachable_at_placement_is_503_and_creates_nothing(settings: Settings) -> None:
    away = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(away)) as client:
        response = client.post("/spaces", json={"title": "Nowhere to go"})
        assert response.status_code == 503
        assert "SFU node registry (Redis at redis://127.0.0.1:" in response.json()["error"]["message"]
        assert client.get("/spaces").json()["items"] == []
        assert "cannot be reached" in client.get("/live").text


def test_no_live_node_is_503_and_a_stale_one_is_never_handed_out(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.post("/spaces", json={"title": "No node"})
        assert response.status_code == 503 and "no SFU node is running" in response.json()["error"]["message"]
        assert client.get("/spaces").json()["items"] == []
        with registered_node(settings, "http://fresh.test:9000", node_id="fresh"):
            created = client.post("/spaces", json={"title": "Placed"}).json()
        assert created["rtc_url"] == f"ws://fresh.test:9000/spaces/{created['space_id']}/rtc"
        # Its node gone, a space nothing was recorded of goes to a live node with the next token.
        with registered_node(settings, "http://other.test:9000", node_id="other"):
            joined = client.post(f"/spaces/{created['space_id']}/tokens", json={"role": "listener"}).json()
        assert joined["rtc_url"] == f"ws://other.test:9000/spaces/{created['space_id']}/rtc"
        assert open_catalog(settings).get_space(created["space_id"]).node == "other"
