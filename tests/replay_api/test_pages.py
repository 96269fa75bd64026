"""The server-rendered pages, without a browser (the browser tests are in test_browser.py)."""

from __future__ import annotations

import html
import re
from dataclasses import replace

from fastapi import FastAPI
from fastapi.testclient import TestClient

from spaces.models import Space, SpaceState, Visibility
from tests.support.replay import Recording, publish, token_for


def test_home_lists_spaces_newest_first(local_client: TestClient, local_app: FastAPI, recording: Recording) -> None:
    for i in range(3):
        publish(local_app.state.catalog, local_app.state.blobs, recording, space_id=f"s{i}",
                title=f"Evening {i}", created_at=1_700_000_000.0 + i)  # fmt: skip
    page = local_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    titles = re.findall(r'class="card__title">([^<]+)<', page.text)
    assert titles == ["Evening 2", "Evening 1", "Evening 0"]
    assert 'href="/spaces/s2/replay"' in page.text


def test_home_pages_with_a_cursor(local_client: TestClient, local_app: FastAPI) -> None:
    for i in range(25):
        local_app.state.catalog.put_space(
            Space(f"p{i:02d}", f"Space {i:02d}", "h", 1_700_000_000.0 + i, state=SpaceState.READY)
        )
    first = local_client.get("/").text
    assert len(re.findall(r'class="card__title"', first)) == 20
    next_page = html.unescape(re.search(r'href="(/\?cursor=[^"]+)"', first).group(1))  # type: ignore[union-attr]
    second = local_client.get(next_page).text
    assert re.findall(r'class="card__title">([^<]+)<', second) == [f"Space {i:02d}" for i in range(4, -1, -1)]


def test_home_search_links_to_the_moment(local_client: TestClient, local_published: Space) -> None:
    page = local_client.get("/", params={"q": "queen of hearts"}).text
    assert f'href="/spaces/{local_published.space_id}/replay?t=7.50"' in page or "replay?t=" in page
    assert "<mark>queen</mark>" in page
    assert "Nothing matches" in local_client.get("/", params={"q": "zebra"}).text


def test_replay_page(local_client: TestClient, local_published: Space, recording: Recording) -> None:
    sid = local_published.space_id
    page = local_client.get(f"/spaces/{sid}/replay")
    assert page.status_code == 200
    text = page.text
    assert f'<source src="/spaces/{sid}/audio" type="audio/ogg; codecs=opus">' in text
    assert f'<source src="/spaces/{sid}/audio?format=m4a" type="audio/mp4">' in text
    assert f'<track kind="captions" src="/spaces/{sid}/captions.vtt"' in text
    starts = [float(s) for s in re.findall(r'class="w" data-s="([\d.]+)"', text)]
    assert starts == [round(w.start, 3) for w in recording.words]
    assert 'data-speaker="alice"' in text and 'data-speaker="bob"' in text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src" not in csp  # scripts: self only, via default-src
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in text  # no inline scripts: the CSP would block them


def test_private_replay_page_passes_its_token_on(
    local_client: TestClient, local_app: FastAPI, recording: Recording
) -> None:
    space = publish(local_app.state.catalog, local_app.state.blobs, recording, space_id="priv",
                    visibility=Visibility.PRIVATE)  # fmt: skip
    token = token_for(local_app.state.settings, space.space_id)
    page = local_client.get(f"/spaces/priv/replay?token={token}")
    assert page.status_code == 200
    assert f'src="/spaces/priv/audio?token={token}"' in page.text
    assert f'src="/spaces/priv/audio?format=m4a&amp;token={token}"' in page.text
    assert f'src="/spaces/priv/captions.vtt?token={token}"' in page.text
    assert '<meta name="robots" content="noindex">' in page.text
    local_client.cookies.clear()  # the page's token cookie (test_access) would open it
    missing = local_client.get("/spaces/priv/replay")
    assert missing.status_code == 404 and "Not found" in missing.text


def test_processing_page(local_client: TestClient, local_app: FastAPI) -> None:
    local_app.state.catalog.put_space(Space("wip", "In the oven", "h", 1.0, state=SpaceState.PROCESSING))
    local_app.state.catalog.set_progress("wip", "transcribe", 0.4)
    page = local_client.get("/spaces/wip/replay")
    assert page.status_code == 200
    assert "Preparing the replay" in page.text and 'value="0.4"' in page.text


def test_titles_are_escaped(local_client: TestClient, local_app: FastAPI, recording: Recording) -> None:
    publish(local_app.state.catalog, local_app.state.blobs, recording, space_id="x",
            title="<script>alert(1)</script>")  # fmt: skip
    for url in ("/", "/spaces/x/replay"):
        text = local_client.get(url).text
        assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text


def test_static_assets(local_client: TestClient) -> None:
    assert (
        local_client.get("/static/replay.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert local_client.get("/static/app.css").status_code == 200
    assert local_client.get("/docs").status_code == 200
    assert "/spaces/{space_id}/audio" in local_client.get("/openapi.json").json()["paths"]


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def error_message(page: str) -> str:
    found = re.search(r'<p class="error-page__message">(.*?)</p>', page, re.S)
    assert found, page
    return html.unescape(found.group(1)).strip()


def test_browsers_get_a_styled_page_for_unknown_paths(local_client: TestClient) -> None:
    page = local_client.get("/no/such/page", headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in page.text and 'href="/"' in page.text
    assert error_message(page.text).startswith("There is nothing at this address.")
    # Programs keep the JSON error, whatever else they accept.
    for accept in (None, "application/json", "*/*", "application/json, text/html;q=0.5"):
        api = local_client.get("/no/such/page", headers={"Accept": accept} if accept else {})
        assert api.status_code == 404 and api.json() == {"error": {"status": 404, "message": "Not Found"}}


def test_browsers_get_plain_messages_on_api_routes_too(local_client: TestClient, local_published: Space) -> None:
    page = local_client.get("/spaces/nosuchspace/transcript", headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert error_message(page.text).startswith("There is no such space here.")
    assert local_client.get("/spaces/nosuchspace/transcript").json()["error"]["message"] == "no space 'nosuchspace'"


def test_error_messages_read_plainly(local_client: TestClient, local_published: Space) -> None:
    sid = local_published.space_id
    page = local_client.get(f"/spaces/{sid}/replay?t=abc", headers=BROWSER)
    assert page.status_code == 422
    message = error_message(page.text)
    assert message == "This link has a bad value for “t”: it should be a number."
    assert "query." not in message and "Input should be" not in message
    # The developer's wording stays available, folded away, and in the JSON API.
    assert "Input should be a valid number" in page.text.split("error-page__details")[1]
    assert "query.t" in local_client.get(f"/spaces/{sid}/replay?t=abc", headers={"Accept": "*/*"}).text
    page = local_client.get(f"/spaces/{sid}/replay?t=-5", headers=BROWSER)
    assert error_message(page.text) == "This link has a bad value for “t”: it should be 0 or more."
    page = local_client.get("/spaces/nosuchspace/replay", headers=BROWSER)
    assert error_message(page.text).startswith("There is no such space here.")


def test_a_live_space_replay_page_offers_to_join_live(local_client: TestClient, local_app: FastAPI) -> None:
    for state in (SpaceState.LIVE, SpaceState.CREATED):
        local_app.state.catalog.put_space(Space(f"now-{state}", "Right now", "h", 1.0, state=state))
        page = local_client.get(f"/spaces/now-{state}/replay").text
        assert f'<a class="button button--primary" id="join-live" href="/spaces/now-{state}/live">Join live</a>' in page


def test_header_and_player_agree_on_the_duration(
    local_client: TestClient, local_app: FastAPI, recording: Recording
) -> None:
    transcript = replace(recording.transcript, duration=20.6)
    publish(local_app.state.catalog, local_app.state.blobs, recording, space_id="long", transcript=transcript)
    page = local_client.get("/spaces/long/replay").text
    assert '<span class="player__time player__time--total">0:20</span>' in page
    assert re.search(r'<span aria-hidden="true">·</span> 20 s\s', page), page


def test_api_docs_are_served_from_the_app_under_a_csp(local_client: TestClient) -> None:
    docs = local_client.get("/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "default-src 'none'" in csp and "unsafe-eval" not in csp
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    assert "<script>" not in docs.text  # no inline script: the CSP would refuse it
    for source in sources:
        assert local_client.get(source).status_code == 200, source
    assert local_client.get("/redoc").status_code == 404  # ReDoc only comes from a CDN
