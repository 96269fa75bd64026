"""Live spaces on the API side: creating them, join tokens, and the live page.

The API never touches media: it places the space on the least loaded live
SFU node (``spaces.router``, ``spaces.placement``), creates it in the
catalog, signs tokens, and serves the page that talks to that node over its
WebSocket. The node checks those tokens itself (shared secret). Only URLs
of live, registered nodes are handed out; with the registry (Redis)
unreachable, or no node live, these routes answer 503.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import replace
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from replay_api.deps import (
    CallerDep,
    CatalogDep,
    ReadableSpace,
    RouterDep,
    SelectNodeDep,
    SettingsDep,
    TokenDep,
    is_host,
    remember_token,
    visible_private,
)
from replay_api.errors import html_errors
from replay_api.limits import RESPONSES, RateLimited, client_address
from replay_api.schemas import CreatedSpace, JoinInfo, NewSpace, NodeOut, TokenRequest
from replay_api.security import LIVE_MEDIA, node_origins, page_headers
from replay_api.sweep import sweep_unjoined, unjoined
from replay_api.templating import templates
from spaces import layout, tokens
from spaces.catalog import Catalog, SpaceFilter
from spaces.exceptions import RouterUnavailable
from spaces.models import Space, SpaceState
from spaces.names import name_key
from spaces.nodes import Node
from spaces.placement import SelectNode
from spaces.router import NodeRouter
from spaces.settings import Settings

router = APIRouter(tags=["live"])
pages = APIRouter(tags=["live"], dependencies=[Depends(html_errors)], include_in_schema=False)

LIVE_STATES = (SpaceState.CREATED, SpaceState.LIVE)


def _urls(settings: Settings, space_id: str, token: str | None, node: Node) -> dict[str, str]:
    live = f"{settings.api_url.rstrip('/')}/spaces/{space_id}/live"
    return {
        "live_url": live + ("?" + urlencode({"token": token}) if token else ""),
        "sfu_url": node.url,
        "rtc_url": node.rtc_url(space_id),
    }


def _claimed_token(catalog: Catalog, settings: Settings, space_id: str, role: tokens.Role, identity: str) -> str | None:
    """A token for ``identity``, if the name is free in the space (it is then bound to the token)."""
    token_id = tokens.new_token_id()
    if catalog.claim_name(space_id, name_key(identity), token_id) != token_id:
        return None
    return tokens.issue(
        settings.secret_key, space_id=space_id, role=role, identity=identity, ttl=settings.token_ttl, token_id=token_id
    )


def _join_info(settings: Settings, space_id: str, role: tokens.Role, identity: str, token: str, node: Node) -> JoinInfo:
    return JoinInfo(
        space_id=space_id,
        role=str(role),
        identity=identity,
        token=token,
        expires_in=settings.token_ttl,
        **_urls(settings, space_id, token, node),
    )


def _node_of(space: Space, catalog: Catalog, router: NodeRouter, select: SelectNode) -> Node:
    """The live node serving a live space (placed now if it has none, moved if its node died before
    anything was recorded); 409 once it is over, 503 (``NoNode``) while its node is down."""
    node = router.node_for(space.space_id, select, may_move=space.state is SpaceState.CREATED)
    if node is None:
        raise HTTPException(409, f"space {space.space_id!r} has ended; it is no longer live")
    if node.node_id != space.node:
        catalog.put_space(replace(space, node=node.node_id))
    return node


@router.post(
    "/spaces",
    status_code=201,
    response_model=CreatedSpace,
    responses=RESPONSES,
    dependencies=[Depends(RateLimited("tokens"))],
)
def create_space(
    body: NewSpace, catalog: CatalogDep, settings: SettingsDep, router: RouterDep, select: SelectNodeDep
) -> CreatedSpace:
    """Open a live space on the least loaded SFU node; the answer carries the host's token and where to go live."""
    space_id = layout.new_space_id()
    title = body.title.strip() or "Untitled space"
    host = body.host.strip() or "host"
    # Placement first: with no registry or no node, nothing is created (503).
    node = router.place(space_id, select)
    try:
        catalog.put_space(
            Space(
                space_id=space_id,
                title=title,
                host=host,
                created_at=time.time(),
                visibility=body.visibility,
                node=node.node_id,
                language=body.language,
            )
        )
    except BaseException:
        with contextlib.suppress(Exception):
            router.unplace(space_id, node.node_id)
        raise
    token = _claimed_token(catalog, settings, space_id, tokens.Role.HOST, host)
    assert token is not None, "a new space has no names yet"
    info = _join_info(settings, space_id, tokens.Role.HOST, host, token, node)
    return CreatedSpace(**info.model_dump(), title=title, visibility=str(body.visibility), language=body.language)


@router.post(
    "/spaces/{space_id}/tokens",
    response_model=JoinInfo,
    responses=RESPONSES,
    dependencies=[Depends(RateLimited("tokens"))],
)
def issue_token(
    request: Request,
    space: ReadableSpace,
    body: TokenRequest,
    catalog: CatalogDep,
    settings: SettingsDep,
    caller: CallerDep,
    router: RouterDep,
    select: SelectNodeDep,
) -> JoinInfo:
    """A join token: the host invites speakers; anyone may listen to a public space.

    Speaker tokens need the host's token (``Authorization: Bearer``). A
    private space's listener tokens need any token of that space; without
    one the space does not exist (404). A name belongs to the first token
    issued for it (or taken in the room): asking for it again is a 409.
    Someone the host removed gets no new token for the space (403).
    """
    space_id = space.space_id
    host = is_host(space, caller)
    if body.role == "speaker":
        if caller is None:
            raise HTTPException(401, "inviting a speaker needs the host's token")
        if not host:
            raise HTTPException(403, "only the host may invite speakers")
    if space.state not in LIVE_STATES or unjoined(space, settings):
        raise HTTPException(409, f"space {space_id!r} is {space.state}; it is no longer live")
    if not host and catalog.is_banned(space_id, address=client_address(request)):
        # Removal holds for the holder, not only the name they had.
        raise HTTPException(403, "you were removed from this space by the host")
    role = tokens.Role.SPEAKER if body.role == "speaker" else tokens.Role.LISTENER
    node = _node_of(space, catalog, router, select)
    wanted = (body.identity or "").strip()
    if wanted:
        if name_key(wanted) == name_key(space.host):
            raise HTTPException(409, f"{wanted!r} is the host's name in this space")
        token = _claimed_token(catalog, settings, space_id, role, wanted)
        if token is None:
            raise HTTPException(409, f"{wanted!r} is already taken in this space; choose another name")
        return _join_info(settings, space_id, role, wanted, token, node)
    while True:
        identity = f"{body.role}-{secrets.token_hex(3)}"
        token = _claimed_token(catalog, settings, space_id, role, identity)
        if token is not None:
            return _join_info(settings, space_id, role, identity, token, node)


@pages.get("/spaces/{space_id}/live", response_class=HTMLResponse)
def live_page(
    request: Request,
    space: ReadableSpace,
    settings: SettingsDep,
    caller: CallerDep,
    token: TokenDep,
    catalog: CatalogDep,
    router: RouterDep,
    select: SelectNodeDep,
) -> Response:
    """The live room: listen, speak with a speaker link, raise a hand, host controls."""
    space_id = space.space_id
    live = space.state in LIVE_STATES
    node = _node_of(space, catalog, router, select) if live else None
    own = caller is not None and caller.space_id == space_id
    # Only a token in the address is the page's to join with: the cookie
    # opens the page, but another tab on the same address (the listener link
    # the host copied) must not join with the host's powers. live.js keeps
    # each tab's token in its sessionStorage.
    page_token = token if own and request.query_params.get("token") == token else ""
    context = {
        "space": space,
        "live": live,
        "rtc_url": node.rtc_url(space_id) if node is not None else "",
        "token": page_token,
        "replay_url": f"/spaces/{space_id}/replay",
    }
    response = templates.TemplateResponse(request, "live.html", context)
    # Every live node: a ``moved`` may send the page to any of them.
    response.headers.update(page_headers(media=LIVE_MEDIA, connect=node_origins(_live_nodes(router, also=node))))
    # A reload works once the page has taken ?token= out of the address bar.
    remember_token(request, response, page_token, space_id)
    return response


@pages.get("/live", response_class=HTMLResponse, dependencies=[Depends(sweep_unjoined)])
def live_spaces(request: Request, catalog: CatalogDep, caller: CallerDep, router: RouterDep) -> Response:
    """Spaces live right now on every node (public ones, and a private one the caller's token opens),
    and the SFU nodes with their load."""
    visible = visible_private(caller)
    rows = [
        s for state in LIVE_STATES for s in catalog.list_spaces(SpaceFilter(state=state, visible=visible), limit=100)
    ]
    rows.sort(key=lambda s: s.created_at, reverse=True)
    try:
        nodes: list[Node] | None = router.nodes()
    except RouterUnavailable:
        nodes = None  # the list still shows; the node table says the registry is away
    response = templates.TemplateResponse(request, "live_list.html", {"spaces": rows, "nodes": nodes})
    response.headers.update(page_headers(media=LIVE_MEDIA))
    return response


@router.get("/nodes", response_model=list[NodeOut], responses=RESPONSES)
def list_nodes(router: RouterDep) -> list[NodeOut]:
    """Every registered SFU node, live or not, with the load of its last heartbeat."""
    return [NodeOut.of(n) for n in router.nodes()]


def _live_nodes(router: NodeRouter, *, also: Node | None) -> list[Node]:
    nodes = router.live_nodes()
    return nodes + [also] if also is not None and also not in nodes else nodes


# One router for app.py to include: the JSON API and the pages (HTML errors).
router.include_router(pages)
