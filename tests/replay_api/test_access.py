"""Private spaces: visible only with a valid token for that space, on every endpoint.

Without a token a private space is indistinguishable from a missing one
(404); a forged, expired or malformed token is a 401; a valid token for
another space is a 404 too (it does not open the space). Search and listings never show a private space's
text to anyone else.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from replay_api.deps import TOKEN_COOKIE
from spaces.models import Space, Turn, Visibility, Word
from tests.support.replay import Recording, publish, token_for

#: Every route that takes a space id (OWASP API1: each one checks access).
ENDPOINTS = [
    "/spaces/{id}",
    "/spaces/{id}/audio",
    "/spaces/{id}/audio?format=m4a",
    "/spaces/{id}/captions.vtt",
    "/spaces/{id}/captions.srt",
    "/spaces/{id}/transcript",
    "/spaces/{id}/transcript?from=1&to=5",
    "/spaces/{id}/clip?start=4&end=6",
    "/spaces/{id}/clip/audio?start=4&end=6",
    "/spaces/{id}/clip/captions.vtt?start=4&end=6",
    "/spaces/{id}/replay",
]

SECRET_WORD = "xylophone"


@pytest.fixture
def private(app: FastAPI, recording: Recording) -> Space:
    """A private space whose transcript holds a word no public space says."""
    said = recording.transcript
    extra = Turn("alice", (Word(19.0, 19.5, SECRET_WORD, "alice"),))
    transcript = type(said)(said.space_id, said.duration, said.speakers, (*said.turns, extra))
    return publish(
        app.state.catalog, app.state.blobs, recording, space_id="hidden", title="Secret plans",
        visibility=Visibility.PRIVATE, transcript=transcript,
    )  # fmt: skip


@pytest.fixture
def public(app: FastAPI, recording: Recording) -> Space:
    return publish(app.state.catalog, app.state.blobs, recording, space_id="open", title="Open night")


def _get(client: TestClient, path: str, space_id: str, token: str | None, *, header: bool = True) -> int:
    url = path.format(id=space_id)
    headers = {}
    if token is not None and header:
        headers["Authorization"] = f"Bearer {token}"
    elif token is not None:
        url += ("&" if "?" in url else "?") + f"token={token}"
    return client.get(url, headers=headers).status_code


@pytest.mark.parametrize("header", [True, False], ids=["bearer", "query"])
def test_valid_token_opens_every_endpoint(client: TestClient, app: FastAPI, private: Space, header: bool) -> None:
    token = token_for(app.state.settings, private.space_id)
    for path in ENDPOINTS:
        assert _get(client, path, private.space_id, token, header=header) in (200, 307), path


def test_no_token_looks_like_a_missing_space(client: TestClient, private: Space) -> None:
    for path in ENDPOINTS:
        hidden = client.get(path.format(id=private.space_id))
        missing = client.get(path.format(id="nosuchspace"))
        assert hidden.status_code == missing.status_code == 404, path
        if "/replay" not in path:
            assert hidden.json()["error"]["message"].replace("hidden", "X") == missing.json()["error"][
                "message"
            ].replace("nosuchspace", "X")


@pytest.mark.parametrize("kind", ["forged", "expired", "malformed", "empty-bearer"])
def test_bad_tokens_are_401(client: TestClient, app: FastAPI, private: Space, public: Space, kind: str) -> None:
    settings = app.state.settings
    token = {
        "forged": token_for(settings, private.space_id, secret="not-the-secret-but-long-enough-for-hs256"),
        "expired": token_for(settings, private.space_id, ttl=-30),
        "malformed": "not.a.jwt",
        "empty-bearer": "",
    }[kind]
    for space in (private, public):
        for path in ENDPOINTS:
            url = path.format(id=space.space_id)
            response = client.get(url, headers={"Authorization": f"Bearer {token}"})
            if kind == "empty-bearer":
                # An empty credential is no credential: the space is simply not visible.
                assert response.status_code == (404 if space is private else response.status_code), url
                continue
            assert response.status_code == 401, url
            assert response.headers["www-authenticate"].startswith("Bearer")
    # The same for a space that does not exist: a bad token reveals nothing.
    if kind != "empty-bearer":
        assert client.get("/spaces/nosuchspace", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_other_space_token_cannot_tell_private_from_missing(
    client: TestClient, app: FastAPI, private: Space, public: Space
) -> None:
    token = token_for(app.state.settings, public.space_id)
    for path in ENDPOINTS:
        hidden = client.get(path.format(id=private.space_id), headers={"Authorization": f"Bearer {token}"})
        missing = client.get(path.format(id="nosuchspace"), headers={"Authorization": f"Bearer {token}"})
        assert hidden.status_code == missing.status_code == 404, path
        if "/replay" not in path:  # the page's markup says "aria-hidden"
            assert hidden.text.replace("hidden", "X") == missing.text.replace("nosuchspace", "X"), path
        # Unused but harmless on a public space.
        assert _get(client, path, public.space_id, token) in (200, 307), path


def test_search_never_leaks_private_text(client: TestClient, app: FastAPI, private: Space, public: Space) -> None:
    def hits(q: str, token: str | None = None) -> set[str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.get("/search", params={"q": q}, headers=headers)
        assert response.status_code == 200
        return {h["space_id"] for h in response.json()["hits"]}

    settings = app.state.settings
    assert hits(SECRET_WORD) == set()
    assert hits("queen of hearts") == {"open"}
    assert hits(SECRET_WORD, token_for(settings, public.space_id)) == set()
    assert hits(SECRET_WORD, token_for(settings, private.space_id)) == {"hidden"}
    assert hits("queen of hearts", token_for(settings, private.space_id)) == {"open", "hidden"}
    assert client.get("/search", params={"q": SECRET_WORD, "space": "hidden"}).json()["hits"] == []
    forged = token_for(settings, private.space_id, secret="another-secret-long-enough-for-hs256!")
    assert (
        client.get("/search", params={"q": SECRET_WORD}, headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )


def test_listings_never_show_private_spaces(client: TestClient, app: FastAPI, private: Space, public: Space) -> None:
    def listed(token: str | None = None, **params: str) -> set[str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return {s["id"] for s in client.get("/spaces", params=params, headers=headers).json()["items"]}

    settings = app.state.settings
    assert listed() == {"open"}
    assert listed(q=SECRET_WORD) == set()
    assert listed(q="Secret plans") == set()
    assert listed(token_for(settings, private.space_id)) == {"open", "hidden"}
    assert listed(token_for(settings, private.space_id), q=SECRET_WORD) == {"hidden"}
    home = client.get("/", params={"q": SECRET_WORD}).text
    # The query itself is echoed (the heading, the search box, the language switch's links): nothing else.
    echoes = (f"“{SECRET_WORD}”", f'value="{SECRET_WORD}"', f"q={SECRET_WORD}")
    for echo in echoes:
        home = home.replace(echo, "")
    assert SECRET_WORD not in home
    assert "Secret plans" not in client.get("/").text


def test_the_replay_page_leaves_a_cookie_so_its_links_need_no_token(
    client: TestClient, app: FastAPI, private: Space, public: Space
) -> None:
    """Opened once with ``?token=``, the page's own requests work without the token in their URLs."""
    settings = app.state.settings
    token = token_for(settings, private.space_id)
    page = client.get(f"/spaces/{private.space_id}/replay", params={"token": token})
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={token};")
    for attribute in ("HttpOnly", "Path=/spaces/hidden", "SameSite=strict"):
        assert attribute.lower() in cookie.lower(), cookie
    assert 590 <= int(re.search(r"Max-Age=(\d+)", cookie, re.I).group(1)) <= 600  # type: ignore[union-attr]
    client.cookies.clear()

    def with_cookie(value: str) -> dict[str, str]:
        return {"Cookie": f"{TOKEN_COOKIE}={value}"}

    for path in ENDPOINTS:
        assert client.get(path.format(id=private.space_id), headers=with_cookie(token)).status_code in (200, 307), path
    # Reading only: a cookie never issues tokens (a form on a same-site page could send it).
    url = f"/spaces/{private.space_id}/tokens"
    assert client.post(url, json={"role": "listener"}, headers=with_cookie(token)).status_code == 404
    # Another space's cookie, or a stale one, is no token: 404 (never 401) and public spaces unaffected.
    for stale in (token_for(settings, public.space_id), token_for(settings, private.space_id, ttl=-30), "garbage"):
        assert client.get(f"/spaces/{private.space_id}", headers=with_cookie(stale)).status_code == 404
        assert client.get(f"/spaces/{public.space_id}", headers=with_cookie(stale)).status_code == 200
