"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from spaces import tokens
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.exceptions import NotFound, TokenError
from spaces.keys import ID_PATTERN
from spaces.models import Space, Visibility
from spaces.settings import Settings


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def _blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


SettingsDep = Annotated[Settings, Depends(_settings)]
CatalogDep = Annotated[Catalog, Depends(_catalog)]
BlobsDep = Annotated[BlobStore, Depends(_blobs)]
SpaceId = Annotated[str, Path(pattern=ID_PATTERN.pattern, description="The space's id")]


def _token(request: Request, token: Annotated[str | None, Query(max_length=4096)] = None) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return token


TokenDep = Annotated[str | None, Depends(_token)]


def _readable_space(space_id: SpaceId, catalog: CatalogDep, settings: SettingsDep, token: TokenDep) -> Space:
    """The space, if the caller may see it.

    A private space without a token is reported as missing (404) so its
    existence does not leak; a bad token for it is a 401.
    """
    space = catalog.get_space(space_id)
    if space.visibility is Visibility.PRIVATE:
        if token is None:
            raise NotFound(f"no space {space_id!r}")
        tokens.verify(settings.secret_key, token, space_id=space_id)
    return space


def visible_private(settings: Settings, token: str | None) -> list[str]:
    """Private space ids the caller's token opens (for search and listings)."""
    if token is None:
        return []
    try:
        return [tokens.verify(settings.secret_key, token).space_id]
    except TokenError:
        return []


ReadableSpace = Annotated[Space, Depends(_readable_space)]
