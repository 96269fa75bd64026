"""Dependencies shared by the routers, as ``Annotated`` aliases.

Access to private spaces is decided here, once, for every route that takes a
space id:

* a token, when sent (``Authorization: Bearer`` or ``?token=``; or the
  space's token cookie, see ``remember_token``, which only counts while
  valid and only for reading), must be
  valid, whatever the space: forged, expired or malformed is a 401, so a bad
  token never tells apart a private space from a missing one;
* a private space the caller's token does not open (no token, or a valid
  token for another space) is a 404, word for word a missing space's: no
  token tells apart a private space from a missing one. A token is simply
  unused on a public space it is not for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request, Response

from spaces import keys, tokens
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.exceptions import NotFound, TokenError
from spaces.formats import AudioFormat
from spaces.models import Space, SpaceState, Visibility
from spaces.placement import SelectNode
from spaces.router import NodeRouter
from spaces.settings import Settings

#: The furthest point in a space (seconds) a request may name: about 115 days.
MAX_SECONDS = 10_000_000.0


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


async def _blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


async def _router(request: Request) -> NodeRouter:
    router: NodeRouter = request.app.state.router
    return router


async def _select_node(request: Request) -> SelectNode:
    select: SelectNode = request.app.state.select_node
    return select


# Dependencies that only read the request are ``async``: FastAPI runs sync
# ones in the thread pool, a hop per dependency per request.
SettingsDep = Annotated[Settings, Depends(_settings)]
CatalogDep = Annotated[Catalog, Depends(_catalog)]
BlobsDep = Annotated[BlobStore, Depends(_blobs)]
RouterDep = Annotated[NodeRouter, Depends(_router)]
"""The SFU node registry (Redis): where live spaces are placed and served."""
SelectNodeDep = Annotated[SelectNode, Depends(_select_node)]
SpaceId = Annotated[str, Path(pattern=keys.ID_PATTERN.pattern, description="The space's id")]


def seconds(description: str, *, alias: str | None = None) -> Any:
    """A ``Query`` for a time in a space: finite, not negative, not absurd (else 422)."""
    return Query(alias=alias, ge=0, le=MAX_SECONDS, allow_inf_nan=False, description=description)


async def _token(
    request: Request,
    token: Annotated[str | None, Query(max_length=4096, description="Access token of a private space")] = None,
) -> str | None:
    return pick_token(request.headers.get("authorization", ""), token, lambda: _cookie_token(request))


def pick_token(authorization: str, query: str | None, cookie: Callable[[], str | None]) -> str | None:
    """The caller's token: ``Authorization: Bearer``, else ``?token=``, else the space's cookie.

    Shared with the HLS fast path (``replay_api.hls_fast``), which must pick the same one.
    """
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return query or cookie()


#: Checks a token for a space (``tokens.verify`` with the secret bound); raises ``TokenError``.
Verify = Callable[[str, str | None], tokens.Claims]

#: The cookie a page sets so its own requests (``<audio src>``, captions,
#: fetches) need no ``?token=``: scoped to the one space's paths.
TOKEN_COOKIE = "spaces_token"


def _cookie_token(request: Request) -> str | None:
    """The token cookie of this space, for reading only, and only while valid.

    A cookie goes along unasked, so it is no explicit credential: it opens
    reads (GET/HEAD) of the space it was set for and nothing else, and a
    stale one counts as no token (a 404 for a private space, never a 401).
    """
    settings: Settings = request.app.state.settings
    space_id = request.path_params.get("space_id")
    return readable_cookie(
        request.cookies.get(TOKEN_COOKIE),
        space_id if isinstance(space_id, str) else None,
        request.method,
        lambda token, space: tokens.verify(settings.secret_key, token, space_id=space),
    )


def readable_cookie(value: str | None, space_id: str | None, method: str, verify: Verify) -> str | None:
    """The cookie's token if it counts (:func:`_cookie_token`), checked by ``verify(token, space_id)``."""
    if not value or space_id is None or method not in ("GET", "HEAD"):
        return None
    try:
        verify(value, space_id)
    except TokenError:
        return None
    return value


def remember_token(request: Request, response: Response, token: str | None, space_id: str) -> None:
    """Set the token cookie when a page was opened with a valid token of its space.

    HttpOnly (scripts never read it), SameSite=Strict (other sites' pages
    never send it), path-scoped to ``/spaces/{id}`` and gone when the token
    expires; so the page's own links can leave the token out of URLs, where
    it would reach histories, logs and Referers.
    """
    if not token:
        return
    settings: Settings = request.app.state.settings
    try:
        claims = tokens.verify(settings.secret_key, token, space_id=space_id)
    except TokenError:
        return
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        max_age=max(0, claims.expires_at - int(time.time())),
        path=f"/spaces/{space_id}",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


TokenDep = Annotated[str | None, Depends(_token)]


async def _caller(settings: SettingsDep, token: TokenDep) -> tokens.Claims | None:
    """The verified claims of the caller's token; raises ``TokenError`` (401) if bad."""
    if token is None:
        return None
    return tokens.verify(settings.secret_key, token)


CallerDep = Annotated[tokens.Claims | None, Depends(_caller)]


def _readable_space(space_id: SpaceId, catalog: CatalogDep, caller: CallerDep) -> Space:
    """The space, if the caller may see it (rules in the module docstring)."""
    space = catalog.get_space(space_id)
    if space.state is SpaceState.DELETING:  # deleted as far as anyone can tell
        raise NotFound(f"no space {space_id!r}")
    if not opens(space, caller):
        raise NotFound(f"no space {space_id!r}")
    return space


ReadableSpace = Annotated[Space, Depends(_readable_space)]


def opens(space: Space, caller: tokens.Claims | None) -> bool:
    """Whether the caller may see the space: public, or private with a token of its own."""
    return space.visibility is not Visibility.PRIVATE or (caller is not None and caller.space_id == space.space_id)


def is_host(space: Space, caller: tokens.Claims | None) -> bool:
    """Whether the caller holds a host's token of this space."""
    return caller is not None and caller.space_id == space.space_id and caller.role is tokens.Role.HOST


def servable(space: Space, blobs: BlobStore) -> bool:
    """Whether the space's replay, captions and transcript can be served.

    A ready space's can. So can those of a space being reprocessed (or whose
    reprocess failed) while an earlier run's outputs are there: a run
    replaces them whole, so they stay right until it does.
    """
    if space.state is SpaceState.READY:
        return True
    return space.state in (SpaceState.PROCESSING, SpaceState.FAILED) and all(
        blobs.exists(key) for key in (keys.transcript(space.space_id), keys.replay(space.space_id, AudioFormat.OGG))
    )


def _ready_space(space: ReadableSpace, blobs: BlobsDep) -> Space:
    """A readable, servable space (:func:`servable`); else 409."""
    if not servable(space, blobs):
        raise HTTPException(409, f"space {space.space_id!r} is {space.state}, not ready yet")
    return space


ReadySpace = Annotated[Space, Depends(_ready_space)]


def visible_private(caller: tokens.Claims | None) -> list[str]:
    """Private space ids the caller's token opens (for search and listings)."""
    return [caller.space_id] if caller is not None else []
