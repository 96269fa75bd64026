"""The replay page in a real browser: Debian's Chromium, driven by Playwright.

The app runs in uvicorn on a loopback port; the browser plays the real
replay audio (autoplay allowed by a flag) and the tests compare the page's
highlighted word, speakers and seeking with the words' true times.
Screenshots go to ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect, sync_playwright

from replay_api.deps import TOKEN_COOKIE
from spaces import tokens
from spaces.models import Space, SpaceState, Visibility, Word
from tests.support.replay import Recording, publish, token_for

from .server import LiveServer

CHROMIUM = "/usr/bin/chromium"
#: How far behind currentTime the highlight may be (one late frame on a busy machine).
LAG = 0.3
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live(local_app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(local_app) as server:
        yield server


@pytest.fixture
def page(browser: Browser, live: LiveServer) -> Iterator[Page]:
    # Asks for the server so that it stops after the page closes: a page still
    # loading from a stopped server logs ERR_CONNECTION_RESET as its own error.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()
    assert errors == [], errors


@pytest.fixture
def space(local_app: FastAPI, recording: Recording) -> Space:
    return publish(local_app.state.catalog, local_app.state.blobs, recording, space_id="cards", title="Card night")


def audio_state(page: Page) -> dict[str, Any]:
    """currentTime, paused state and the highlighted word, read in one go."""
    state: dict[str, Any] = page.evaluate(
        """() => {
            const a = document.getElementById('audio');
            const w = document.querySelector('#transcript .w.is-current');
            const speaking = Array.from(
                document.querySelectorAll('.speaker.is-speaking'), e => e.dataset.speaker);
            return {t: a.currentTime, paused: a.paused, rate: a.playbackRate,
                    word: w ? {s: parseFloat(w.dataset.s), text: w.textContent} : null, speaking};
        }"""
    )
    return state


def wait_until(page: Page, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    state = audio_state(page)
    while not predicate(state):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last state {state}")
        page.wait_for_timeout(50)
        state = audio_state(page)
    return state


def word_at(words: list[Word], t: float) -> Word | None:
    said = [w for w in words if w.start <= t]
    return said[-1] if said and t <= said[-1].end + 1.5 else None


def test_highlight_follows_playback(page: Page, live: LiveServer, space: Space, recording: Recording) -> None:
    page.goto(f"{live.url}/spaces/cards/replay")
    page.click("#toggle")
    wait_until(page, lambda s: not s["paused"] and s["t"] > 0.6)
    checked = 0
    while checked < 12:
        state = audio_state(page)
        if state["paused"]:
            break
        # The page redraws the highlight once per frame; on a busy machine a
        # frame can come late, so the word said up to 0.3 s ago also counts.
        now, before = word_at(recording.words, state["t"]), word_at(recording.words, state["t"] - LAG)
        if now is not None:
            # Any word current at some moment of the last LAG seconds.
            recent = [w for w in recording.words if state["t"] - LAG <= w.start <= state["t"]]
            allowed = [w for w in (now, before, *recent) if w is not None]
            assert state["word"] is not None, state
            assert state["word"]["s"] in {round(w.start, 3) for w in allowed}, (state, now)
            assert state["speaking"] in [[w.speaker] for w in allowed], state
            checked += 1
        page.wait_for_timeout(230)
    assert checked >= 8
    # The current word is in view, below the sticky player.
    box = page.locator(".w.is-current").bounding_box()
    assert box is not None and 0 < box["y"] < 900


def test_click_a_word_to_seek(page: Page, live: LiveServer, space: Space, recording: Recording) -> None:
    page.goto(f"{live.url}/spaces/cards/replay")
    queen = recording.word("queen")
    page.locator(f'.w[data-s="{queen.start:.3f}"]').click()
    state = wait_until(page, lambda s: not s["paused"] and s["t"] >= queen.start)
    assert state["t"] == pytest.approx(queen.start, abs=0.5)
    state = wait_until(page, lambda s: s["word"] is not None)
    assert state["word"]["text"] in ("queen", "of", "hearts.")
    # A turn's time stamp seeks to the turn.
    page.locator(".turn__time").nth(3).click()
    state = wait_until(page, lambda s: s["t"] >= 11.5)
    assert state["t"] == pytest.approx(11.5, abs=0.6)


def test_search_hit_deep_link_starts_playback_there(
    page: Page, live: LiveServer, space: Space, recording: Recording
) -> None:
    page.goto(f"{live.url}/")
    page.fill("#q", '"river card"')
    page.press("#q", "Enter")
    hit = page.locator(".hit__link").first
    expect(hit).to_contain_text("river")
    hit.click()
    page.wait_for_url("**/spaces/cards/replay?t=11.50")
    state = wait_until(page, lambda s: not s["paused"] and s["t"] > 11.6)
    assert 11.5 <= state["t"] < 14.0
    state = wait_until(page, lambda s: s["word"] is not None)
    assert state["word"]["s"] >= 11.5
    assert state["speaking"] == ["bob"]
    expect(page.locator(".turn.is-target")).to_contain_text("The river card decided")


def test_keyboard_speed_and_captions(page: Page, live: LiveServer, space: Space) -> None:
    page.goto(f"{live.url}/spaces/cards/replay")
    page.wait_for_function("document.getElementById('audio').readyState >= 1")
    page.locator("h1").click()
    page.keyboard.press("Space")
    wait_until(page, lambda s: not s["paused"])
    page.keyboard.press("Space")
    paused = wait_until(page, lambda s: s["paused"])
    page.keyboard.press("ArrowRight")
    moved = wait_until(page, lambda s: s["t"] >= paused["t"] + 4.9)
    assert moved["t"] == pytest.approx(paused["t"] + 5, abs=0.1)
    page.keyboard.press("Shift+ArrowLeft")
    wait_until(page, lambda s: s["t"] <= max(0.0, moved["t"] - 14.9) + 0.01)
    page.select_option("#speed", "1.5")
    assert audio_state(page)["rate"] == 1.5
    # Captions come from the <track>: loaded, and shown under the player while playing.
    cues = page.evaluate("document.getElementById('audio').textTracks[0].cues.length")
    assert cues >= 5
    page.keyboard.press("ArrowRight")
    page.locator("h1").click()
    page.keyboard.press("Space")
    expect(page.locator("#caption-text")).to_contain_text("Alice")  # "Thanks Alice, ..." said by bob
    expect(page.locator("#caption-who")).to_have_text("bob")


def test_search_in_the_space(page: Page, live: LiveServer, space: Space, recording: Recording) -> None:
    page.goto(f"{live.url}/spaces/cards/replay")
    page.fill("#find", "ten of cl")
    expect(page.locator("#find-status")).to_have_text("1 match")
    expect(page.locator(".w.is-hit")).to_have_count(3)
    page.press("#find", "Enter")
    ten = recording.word("ten")
    state = wait_until(page, lambda s: not s["paused"] and s["t"] >= ten.start)
    assert state["t"] == pytest.approx(ten.start, abs=0.5)
    page.fill("#find", "zebra")
    expect(page.locator("#find-status")).to_have_text("No matches")


def test_private_space_plays_with_its_token(
    page: Page, live: LiveServer, local_app: FastAPI, recording: Recording
) -> None:
    publish(
        local_app.state.catalog,
        local_app.state.blobs,
        recording,
        space_id="priv",
        visibility=Visibility.PRIVATE,
    )
    token = token_for(local_app.state.settings, "priv")
    page.goto(f"{live.url}/spaces/priv/replay?token={token}&t=4")
    state = wait_until(page, lambda s: not s["paused"] and s["t"] > 4.2)
    assert state["t"] < 7
    page.wait_for_function("document.getElementById('audio').textTracks[0].cues.length > 0")
    # The page keeps its token in an HttpOnly cookie for the space's own paths.
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies[TOKEN_COOKIE]["httpOnly"] and cookies[TOKEN_COOKIE]["path"] == "/spaces/priv"
    assert page.evaluate("document.cookie") == ""
    # Without the token (nor its cookie) the page is a 404, like a space that does not exist.
    page.context.clear_cookies()
    response = page.request.get(f"{live.url}/spaces/priv/replay")
    assert response.status == 404 and "Not found" in response.text()


def test_playback_through_s3_redirects(browser: Browser, s3_app: FastAPI, recording: Recording) -> None:
    publish(s3_app.state.catalog, s3_app.state.blobs, recording, space_id="ons3")
    with LiveServer(s3_app) as server:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{server.url}/spaces/ons3/replay?t=8")
        state = wait_until(page, lambda s: not s["paused"] and s["t"] > 8.2)
        assert state["word"] is not None
        src = page.evaluate("document.getElementById('audio').currentSrc")
        assert src.endswith("/spaces/ons3/audio")
        context.close()


def test_screenshots(
    browser: Browser, live: LiveServer, space: Space, local_app: FastAPI, recording: Recording
) -> None:
    """Desktop and phone screenshots, mid-playback, for a person to check."""
    ARTIFACTS.mkdir(exist_ok=True)
    for i, title in enumerate(["Poker strategy with the regulars", "Friday product demo", "Open mic: jazz standards"]):
        publish(local_app.state.catalog, local_app.state.blobs, recording, space_id=f"other{i}", title=title,
                created_at=1_700_000_100.0 + i)  # fmt: skip
    catalog = local_app.state.catalog
    catalog.put_space(Space("wip", "Late night poker", "dana", 1_700_000_200.0, state=SpaceState.PROCESSING))
    for stage, fraction in [("transcribe:dana", 1.0), ("transcribe:erin", 0.45), ("mix", 0.7)]:
        catalog.set_progress("wip", stage, fraction)
    for name, options in [
        ("replay", {"viewport": {"width": 1280, "height": 900}}),
        ("replay-phone", {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                          "is_mobile": True, "has_touch": True}),
    ]:  # fmt: skip
        context = browser.new_context(**options)
        page = context.new_page()
        page.goto(f"{live.url}/spaces/cards/replay?t=8.2")
        wait_until(page, lambda s: not s["paused"] and s["t"] > 9.0)
        page.evaluate("document.getElementById('audio').pause()")
        page.fill("#find", "card")
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=name == "replay")
        queen, _, hearts = words_between(recording, 9.45, 10.0)
        page.evaluate(
            """([a, b]) => getSelection().setBaseAndExtent(
                document.querySelector(`.w[data-s="${a}"]`).firstChild, 0,
                document.querySelector(`.w[data-s="${b}"]`).firstChild, 0)""",
            [f"{queen.start:.3f}", f"{hearts.start:.3f}"],
        )
        expect(page.locator("#clip-pop")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / f"{name}-clip.png"))
        if name == "replay-phone":
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(100)
            page.screenshot(path=str(ARTIFACTS / "replay-phone-top.png"))
            page.goto(f"{live.url}/?q=queen+hearts")
            page.screenshot(path=str(ARTIFACTS / "search-phone.png"))
            page.goto(f"{live.url}/")
            page.screenshot(path=str(ARTIFACTS / "home-phone.png"), full_page=True)
        page.goto(f"{live.url}/spaces/wip/replay")
        page.screenshot(path=str(ARTIFACTS / f"{name}-preparing.png"))
        page.goto(f"{live.url}/no/such/page")
        page.screenshot(path=str(ARTIFACTS / f"{name}-error.png"))
        if name == "replay":
            page.goto(f"{live.url}/")
            page.screenshot(path=str(ARTIFACTS / "home.png"))
            page.goto(f"{live.url}/?q=river")
            page.screenshot(path=str(ARTIFACTS / "search.png"))
        context.close()
    assert (ARTIFACTS / "replay.png").stat().st_size > 10_000


def poll(page: Page, expression: str, timeout: float = 15.0) -> Any:
    """Evaluate until truthy, from Python: wait_for_function's polling is an eval the pages' CSP refuses."""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(expression)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)
    return value


def words_between(recording: Recording, start: float, end: float) -> list[Word]:
    return [w for w in recording.words if start <= w.start < end]


def test_clip_is_offered_beside_the_selection(page: Page, live: LiveServer, space: Space, recording: Recording) -> None:
    """A selection dragged up to the next word makes a clip of the selected words, shown by them."""
    queen, of, hearts = words_between(recording, 9.45, 10.0)
    page.goto(f"{live.url}/spaces/cards/replay")
    expect(page.locator("#clip-pop")).to_be_hidden()
    # A drag that ends where "hearts." begins: it touches that word, it does not select it.
    page.evaluate(
        """([a, b]) => getSelection().setBaseAndExtent(
            document.querySelector(`.w[data-s="${a}"]`).firstChild, 0,
            document.querySelector(`.w[data-s="${b}"]`).firstChild, 0)""",
        [f"{queen.start:.3f}", f"{hearts.start:.3f}"],
    )
    pop = page.locator("#clip-pop")
    expect(pop).to_be_visible()
    expect(page.locator("#clip-text")).to_have_text("queen of")
    # Next to the selection: just below its last word, overlapping it sideways.
    word = page.locator(f'.w[data-s="{of.start:.3f}"]').bounding_box()
    box = pop.bounding_box()
    assert word is not None and box is not None
    assert word["y"] + word["height"] <= box["y"] <= word["y"] + word["height"] + 40, (word, box)
    assert box["x"] <= word["x"] + word["width"] and box["x"] + box["width"] >= word["x"], (word, box)
    # The API agrees on the words, and the clip stops before the next word.
    audio_url = page.get_attribute("#clip-audio", "href")
    assert audio_url is not None
    clip = page.request.get(live.url + audio_url.replace("/clip/audio?", "/clip?")).json()
    assert clip["text"] == "queen of"
    assert clip["start"] == pytest.approx(queen.start, abs=0.001)
    assert of.end <= clip["end"] <= hearts.start + 0.001
    # A preview player plays the clip itself.
    page.locator("#clip-preview").evaluate("a => a.play()")
    poll(page, "document.getElementById('clip-preview').currentTime > 0.1")
    duration = page.locator("#clip-preview").evaluate("a => a.duration")
    assert duration == pytest.approx(clip["end"] - clip["start"], abs=0.15)
    # And a link to share.
    assert page.input_value("#clip-link") == f"{live.url}/spaces/cards/replay?t={queen.start:.2f}"
    expect(page.locator("#clip-copy")).to_be_visible()


def test_words_take_the_keyboard_and_shift_arrows_make_a_clip(
    page: Page, live: LiveServer, space: Space, recording: Recording
) -> None:
    page.goto(f"{live.url}/spaces/cards/replay")
    poll(page, "document.getElementById('audio').readyState >= 1")
    # Tab reaches the transcript's words (one tab stop for all of them).
    page.locator("h1").click()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('w')"):
            break
    assert page.evaluate("document.activeElement.textContent") == recording.words[0].text
    # Arrows move between words (not through the audio).
    queen = recording.word("queen")
    for _ in range(recording.words.index(queen)):
        page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.textContent") == "queen"
    assert audio_state(page)["t"] == 0
    page.keyboard.press("Shift+ArrowRight")
    expect(page.locator("#clip-pop")).to_be_visible()
    expect(page.locator("#clip-text")).to_have_text("queen of")
    page.keyboard.press("Shift+ArrowRight")
    expect(page.locator("#clip-text")).to_have_text("queen of hearts.")
    page.keyboard.press("Shift+ArrowLeft")
    expect(page.locator("#clip-text")).to_have_text("queen of")
    page.keyboard.press("Escape")
    expect(page.locator("#clip-pop")).to_be_hidden()
    # Enter plays from the focused word.
    page.keyboard.press("Enter")
    of = recording.words[recording.words.index(queen) + 1]
    state = wait_until(page, lambda s: not s["paused"] and s["t"] >= of.start)
    assert state["t"] == pytest.approx(of.start, abs=0.5)


PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def test_preparing_page_follows_the_pipeline(
    page: Page, live: LiveServer, local_app: FastAPI, recording: Recording
) -> None:
    """Progress from GET /spaces/{id} in plain words, in place; the replay opens once ready."""
    catalog = local_app.state.catalog
    catalog.put_space(Space("wip", "Card night", "alice", 1.0, state=SpaceState.PROCESSING, speakers=("alice", "bob")))
    catalog.set_progress("wip", "transcribe:alice", 0.4)
    page.goto(f"{live.url}/spaces/wip/replay")
    bar = page.locator('.progress[data-stage="transcribe:alice"]')
    expect(bar.locator(".progress__label")).to_have_text("Transcribing alice")
    expect(bar.locator(".progress__pct")).to_have_text("40 %")
    page.evaluate("window.sameDocument = true")
    catalog.set_progress("wip", "transcribe:alice", 0.8)
    expect(bar.locator(".progress__pct")).to_have_text("80 %", timeout=10_000)
    assert page.evaluate("window.sameDocument") is True  # moved in place, not by reloading
    catalog.set_progress("wip", "mix", 0.5)
    expect(page.locator('.progress[data-stage="mix"] .progress__label')).to_have_text(
        "Mixing the replay", timeout=10_000
    )
    publish(catalog, local_app.state.blobs, recording, space_id="wip")
    expect(page.locator("#replay")).to_be_visible(timeout=10_000)


def test_nothing_is_highlighted_paused_at_the_start(
    page: Page, live: LiveServer, local_app: FastAPI, recording: Recording
) -> None:
    """Whisper often starts the first word at 0.0: at 0:00, paused, it is not being said yet."""
    first, *rest = recording.transcript.turns
    words = (replace(first.words[0], start=0.0), *first.words[1:])
    transcript = replace(recording.transcript, turns=(replace(first, words=words), *rest))
    publish(local_app.state.catalog, local_app.state.blobs, recording, space_id="zero", transcript=transcript)
    page.goto(f"{live.url}/spaces/zero/replay")
    poll(page, "document.getElementById('audio').readyState >= 1")
    state = audio_state(page)
    assert state["paused"] and state["t"] == 0 and state["word"] is None, state
    assert page.locator(".turn.is-active").count() == 0
    page.locator("#toggle").click()
    state = wait_until(page, lambda s: s["word"] is not None)
    assert state["word"]["text"] == "Welcome"


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_share_field_shows_the_whole_link(browser: Browser, live: LiveServer, space: Space, device: str) -> None:
    context = browser.new_context(**(PHONE if device == "phone" else {"viewport": {"width": 1280, "height": 900}}))
    page = context.new_page()
    page.goto(f"{live.url}/spaces/cards/replay?t=8.2")
    wait_until(page, lambda s: not s["paused"] and s["t"] > 8.3)
    page.evaluate("document.getElementById('audio').pause()")
    field = page.locator("#share-link")
    field.scroll_into_view_if_needed()
    assert "/spaces/cards/replay?t=8." in field.input_value()
    hidden = field.evaluate("f => [f.scrollWidth - f.clientWidth, f.scrollHeight - f.clientHeight]")
    assert hidden[0] <= 1 and hidden[1] <= 1, f"part of the link is scrolled out of sight: {hidden}"
    expect(page.locator("#share-time")).to_have_text("0:08")
    context.close()


def test_header_search_stays_on_phones(browser: Browser, live: LiveServer, space: Space) -> None:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(f"{live.url}/spaces/cards/replay")
    search = page.locator("#header-q")
    expect(search).to_be_visible()
    box = search.bounding_box()
    assert box is not None and box["width"] >= 150 and box["x"] + box["width"] <= 390
    expect(page.locator(".site-nav__live")).to_be_visible()
    search.fill("queen")
    search.press("Enter")
    expect(page.locator(".hit__link").first).to_contain_text("queen")
    context.close()


def test_state_chips_look_different(page: Page, live: LiveServer, local_app: FastAPI) -> None:
    catalog = local_app.state.catalog
    for state in (SpaceState.CREATED, SpaceState.LIVE, SpaceState.PROCESSING):
        # Created now: a space nobody joined for minutes ends as empty and leaves /live.
        catalog.put_space(Space(f"chip-{state}", f"A {state} space", "h", time.time(), state=state))

    def chip(url: str, state: SpaceState) -> tuple[str, str, str]:
        page.goto(f"{live.url}{url}")
        el = page.locator(f'a[href="/spaces/chip-{state}/{"live" if url == "/live" else "replay"}"] .chip--state')
        look: tuple[str, str] = el.evaluate("e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]")
        return (el.inner_text(), *look)

    created, live_now = chip("/live", SpaceState.CREATED), chip("/live", SpaceState.LIVE)
    processing = chip("/", SpaceState.PROCESSING)
    assert len({created[1:], live_now[1:], processing[1:]}) == 3, (created, live_now, processing)
    assert [created[0], live_now[0], processing[0]] == ["Not started", "Live", "Processing"]


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_start_a_space_from_the_home_page(
    browser: Browser, live: LiveServer, local_app: FastAPI, visibility: str
) -> None:
    """Home page -> POST /spaces -> the host's live page, whose address holds no token."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live.url}/live")
    page.click("#start-link")
    expect(page.locator(".hero__live a")).to_have_attribute("href", "/live")
    expect(page.locator(".site-nav__live")).to_have_attribute("href", "/live")
    page.fill("#start-title-input", "Morning coffee")
    page.fill("#start-host", "dana")
    page.check(f'input[name="visibility"][value="{visibility}"]')
    page.click("#start-go")
    page.wait_for_url(re.compile(r"/spaces/[^/?#]+/live$"))
    space_id = page.url.split("/")[-2]
    space = local_app.state.catalog.get_space(space_id)
    assert (space.title, space.host, str(space.visibility)) == ("Morning coffee", "dana", visibility)
    expect(page.locator("#join")).to_have_text("Join as host")
    token = page.evaluate(f"sessionStorage.getItem('space-token:{space_id}')")
    claims = tokens.verify(local_app.state.settings.secret_key, token)
    assert (claims.space_id, claims.role, claims.identity) == (space_id, tokens.Role.HOST, "dana")
    # A reload (the host's way back in) still joins as the host, the address still clean.
    page.reload()
    expect(page.locator("#join")).to_have_text("Join as host")
    assert "token" not in page.url
    # The address alone gives no powers: in another browser it is a listener's page
    # (a private space does not open at all).
    stranger = browser.new_context()
    other = stranger.new_page()
    response = other.goto(page.url)
    assert response is not None
    if visibility == "public":
        expect(other.locator("#join")).to_have_text("Listen")
    else:
        assert response.status == 404
    stranger.close()
    context.close()


def test_api_docs_load_nothing_from_outside(live: LiveServer, page: Page) -> None:
    """``/docs`` renders every route from this server's own files, under its CSP (was: a public CDN)."""
    outside: list[str] = []

    def only_ours(route: Any) -> None:
        url = route.request.url
        if url.startswith(live.url):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_ours)
    response = page.goto(f"{live.url}/docs")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".opblock-summary-path", has_text="/spaces/{space_id}/audio").first).to_be_visible(
        timeout=20_000
    )
    assert outside == []


def test_scripts_speak_the_pages_language(browser: Browser, live: LiveServer, space: Space) -> None:
    """A French browser: what replay.js and live.js write comes from the French catalogue."""
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.url}/spaces/cards/replay")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.fill("#find", "ten of cl")
    expect(page.locator("#find-status")).to_have_text("1 résultat")
    page.fill("#find", "zebra")
    expect(page.locator("#find-status")).to_have_text("Aucun résultat")
    expect(page.locator("#toggle")).to_have_attribute("aria-label", "Lecture")
    # The host's own live page: live.js names the invitation in French.
    page.goto(f"{live.url}/live")
    page.click("#start-link")
    page.fill("#start-title-input", "Café du matin")
    page.fill("#start-host", "dana")
    page.click("#start-go")
    page.wait_for_url(re.compile(r"/spaces/[^/?#]+/live$"))
    expect(page.locator("#join")).to_have_text("Rejoindre en tant qu'animateur")
    expect(page.locator("#join-hint")).to_have_text("Vous êtes l'animateur de cet espace (en tant que dana).")
    # The switch: the same page in English, and scripts follow.
    page.click('.language-switch a[hreflang="en"]')
    expect(page.locator("#join")).to_have_text("Join as host")
    context.close()
    assert errors == [], errors
