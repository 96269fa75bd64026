"""Live spaces on the API side: creating them, join tokens, and the live page.

The API never touches media: it creates the space in the catalog, signs
tokens, and serves the page that talks to the SFU (``settings.sfu_url``)
over its WebSocket. The SFU checks those tokens itself (shared secret).
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, field_validator

from replay_api.deps import (
    LIVE_ACCESS_COOKIE,
    CallerDep,
    CatalogDep,
    ReadableSpace,
    SettingsDep,
    SpaceId,
    TokenDep,
    visible_private,
)
from replay_api.errors import html_errors
from replay_api.limits import RESPONSES, RateLimited, client_address
from replay_api.sweep import sweep_unjoined, unjoined
from replay_api.templating import templates
from spaces import tokens
from spaces.catalog import Catalog, SpaceFilter
from spaces.exceptions import InvalidInput, NotFound
from spaces.languages import AUTO, check_language
from spaces.models import Space, SpaceState, Visibility
from spaces.names import name_key
from spaces.settings import Settings

router = APIRouter(tags=["live"])
pages = APIRouter(tags=["live"], dependencies=[Depends(html_errors)], include_in_schema=False)

#: Identities become speaker names in transcripts: short, printable, trimmed.
IDENTITY = r"^[^\x00-\x1f\x7f]{1,64}$"
LIVE_STATES = (SpaceState.CREATED, SpaceState.LIVE)


class NewSpace(BaseModel):
    title: str = Field(min_length=1, max_length=200, description="Shown on the live page and the replay")
    visibility: Visibility = Visibility.PUBLIC
    host: str = Field(default="host", pattern=IDENTITY, description="The host's name in the space")
    language: str = Field(
        default=AUTO,
        description="A Whisper language code (`fr`, `de`, ...) or `auto`: each speaker's detected from their speech",
    )

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        try:
            return check_language(value)
        except InvalidInput as e:
            raise ValueError(str(e)) from e


class TokenRequest(BaseModel):
    role: Literal["speaker", "listener"]
    identity: str | None = Field(default=None, pattern=IDENTITY, description="Name in the space; default: random")


class JoinInfo(BaseModel):
    space_id: str
    role: str
    identity: str
    token: str
    expires_in: int = Field(description="Seconds the token stays valid")
    live_url: str = Field(description="The live page, joining with this token")
    sfu_url: str = Field(description="Base URL of the SFU")
    rtc_url: str = Field(description="The SFU's signaling WebSocket for this space")


class CreatedSpace(JoinInfo):
    title: str
    visibility: str
    language: str


def _urls(settings: Settings, space_id: str, token: str | None) -> dict[str, str]:
    sfu = settings.sfu_url.rstrip("/")
    ws = "wss" if sfu.startswith("https:") else "ws"
    live = f"{settings.api_url.rstrip('/')}/spaces/{space_id}/live"
    return {
        "live_url": live + ("?" + urlencode({"token": token}) if token else ""),
        "sfu_url": sfu,
        "rtc_url": f"{ws}://{urlsplit(sfu).netloc}/spaces/{space_id}/rtc",
    }


def _claimed_token(catalog: Catalog, settings: Settings, space_id: str, role: tokens.Role, identity: str) -> str | None:
    """A token for ``identity``, if the name is free in the space (it is then bound to the token)."""
    token_id = tokens.new_token_id()
    if catalog.claim_name(space_id, name_key(identity), token_id) != token_id:
        return None
    return tokens.issue(
        settings.secret_key, space_id=space_id, role=role, identity=identity, ttl=settings.token_ttl, token_id=token_id
    )


def _join_info(settings: Settings, space_id: str, role: tokens.Role, identity: str, token: str) -> dict[str, Any]:
    return {
        "space_id": space_id,
        "role": str(role),
        "identity": identity,
        "token": token,
        "expires_in": settings.token_ttl,
        **_urls(settings, space_id, token),
    }


@router.post(
    "/spaces",
    status_code=201,
    response_model=CreatedSpace,
    responses=RESPONSES,
    dependencies=[Depends(RateLimited("tokens"))],
)
def create_space(body: NewSpace, catalog: CatalogDep, settings: SettingsDep) -> dict[str, Any]:
    """Open a live space; the answer carries the host's token and where to go live."""
    space_id = secrets.token_urlsafe(12)
    title = body.title.strip() or "Untitled space"
    host = body.host.strip() or "host"
    catalog.put_space(
        Space(
            space_id=space_id,
            title=title,
            host=host,
            created_at=time.time(),
            visibility=body.visibility,
            language=body.language,
        )
    )
    token = _claimed_token(catalog, settings, space_id, tokens.Role.HOST, host)
    assert token is not None, "a new space has no names yet"
    info = _join_info(settings, space_id, tokens.Role.HOST, host, token)
    return {**info, "title": title, "visibility": str(body.visibility), "language": body.language}


@router.post(
    "/spaces/{space_id}/tokens",
    response_model=JoinInfo,
    responses=RESPONSES,
    dependencies=[Depends(RateLimited("tokens"))],
)
def issue_token(
    request: Request,
    space_id: SpaceId,
    body: TokenRequest,
    catalog: CatalogDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> dict[str, Any]:
    """A join token: the host invites speakers; anyone may listen to a public space.

    Speaker tokens need the host's token (``Authorization: Bearer``). A
    private space's listener tokens need any token of that space; without
    one the space does not exist (404). A name belongs to the first token
    issued for it (or taken in the room): asking for it again is a 409.
    Someone the host removed gets no new token for the space (403).
    """
    space = catalog.get_space(space_id)
    own = caller is not None and caller.space_id == space_id
    if space.visibility is Visibility.PRIVATE and not own:
        if caller is None:
            raise NotFound(f"no space {space_id!r}")
        raise HTTPException(403, "this token is for another space")
    if body.role == "speaker":
        if caller is None:
            raise HTTPException(401, "inviting a speaker needs the host's token")
        if not own or caller.role is not tokens.Role.HOST:
            raise HTTPException(403, "only the host may invite speakers")
    if space.state not in LIVE_STATES or unjoined(space, settings):
        raise HTTPException(409, f"space {space_id!r} is {space.state}; it is no longer live")
    is_host = own and caller is not None and caller.role is tokens.Role.HOST
    if not is_host and catalog.is_banned(space_id, address=client_address(request)):
        # Removal holds for the holder, not only the name they had.
        raise HTTPException(403, "you were removed from this space by the host")
    role = tokens.Role.SPEAKER if body.role == "speaker" else tokens.Role.LISTENER
    wanted = (body.identity or "").strip()
    if wanted:
        if name_key(wanted) == name_key(space.host):
            raise HTTPException(409, f"{wanted!r} is the host's name in this space")
        token = _claimed_token(catalog, settings, space_id, role, wanted)
        if token is None:
            raise HTTPException(409, f"{wanted!r} is already taken in this space; choose another name")
        return _join_info(settings, space_id, role, wanted, token)
    while True:
        identity = f"{body.role}-{secrets.token_hex(3)}"
        token = _claimed_token(catalog, settings, space_id, role, identity)
        if token is not None:
            return _join_info(settings, space_id, role, identity, token)


@pages.get("/spaces/{space_id}/live", response_class=HTMLResponse)
def live_page(
    request: Request,
    space: ReadableSpace,
    settings: SettingsDep,
    caller: CallerDep,
    token: TokenDep,
) -> Response:
    """The live room: listen, speak with a speaker link, raise a hand, host controls."""
    space_id = space.space_id
    urls = _urls(settings, space_id, None)
    own = caller is not None and caller.space_id == space_id
    # Only a token in the address is the page's to use: the access cookie
    # opens the page, but another tab on the same address (the listener link
    # the host copied) must not join with the host's powers. live.js keeps
    # each tab's token in its sessionStorage.
    from_address = request.query_params.get("token") == token
    context = {
        "space": space,
        "live": space.state in LIVE_STATES,
        "rtc_url": urls["rtc_url"],
        "token": token if own and from_address else "",
        "replay_url": f"/spaces/{space_id}/replay",
    }
    response = templates.TemplateResponse(request, "live.html", context)
    response.headers.update(_security_headers(urls))
    if own and from_address and caller is not None and token:
        response.set_cookie(
            LIVE_ACCESS_COOKIE,
            token,
            max_age=max(1, caller.expires_at - int(time.time())),
            path=f"/spaces/{space_id}/live",
            httponly=True,
            samesite="strict",
            secure=settings.api_url.startswith("https:"),
        )
    return response


@pages.get("/live", response_class=HTMLResponse, dependencies=[Depends(sweep_unjoined)])
def live_spaces(request: Request, catalog: CatalogDep, settings: SettingsDep, caller: CallerDep) -> Response:
    """Spaces live right now (public ones, and a private one the caller's token opens)."""
    visible = visible_private(caller)
    rows = [
        s for state in LIVE_STATES for s in catalog.list_spaces(SpaceFilter(state=state, visible=visible), limit=100)
    ]
    rows.sort(key=lambda s: s.created_at, reverse=True)
    response = templates.TemplateResponse(request, "live_list.html", {"spaces": rows})
    response.headers.update(_security_headers(_urls(settings, "x", None)))
    return response


def _security_headers(urls: dict[str, str]) -> dict[str, str]:
    sfu = urlsplit(urls["sfu_url"])
    ws = urlsplit(urls["rtc_url"])
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; connect-src 'self' {ws.scheme}://{ws.netloc} {sfu.scheme}://{sfu.netloc}; "
            "media-src 'self' blob: mediastream:; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        ),
        # Join tokens travel in live-page URLs: never pass them on in a Referer.
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


# One router for app.py to include: the JSON API and the pages (HTML errors).
router.include_router(pages)
