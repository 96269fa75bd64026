"""Full-text search across every ready space's transcript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from replay_api.deps import CatalogDep, SettingsDep, TokenDep, visible_private
from replay_api.schemas import SearchHitOut, SearchResults

router = APIRouter(tags=["search"])


@router.get("/search", response_model=SearchResults)
def search(
    catalog: CatalogDep,
    settings: SettingsDep,
    token: TokenDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="Words or \"a phrase\"")],
    speaker: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> SearchResults:
    hits = catalog.search(
        q, limit=limit, offset=offset, speaker=speaker, visible=visible_private(settings, token)
    )
    return SearchResults(
        query=q,
        hits=[SearchHitOut.of(h) for h in hits],
        next_offset=offset + limit if len(hits) == limit else None,
    )
