"""Full-text search across every ready space's transcript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from replay_api.deps import CallerDep, CatalogDep, visible_private
from replay_api.limits import RESPONSES, RateLimited
from replay_api.paging import MAX_OFFSET
from replay_api.schemas import SearchHitOut, SearchResults
from spaces.keys import ID_PATTERN

router = APIRouter(tags=["search"])


@router.get("/search", response_model=SearchResults, responses=RESPONSES, dependencies=[Depends(RateLimited("search"))])
def search(
    catalog: CatalogDep,
    caller: CallerDep,
    q: Annotated[
        str,
        Query(min_length=1, max_length=500, description='Words (all must match) and "quoted phrases"'),
    ],
    speaker: Annotated[str | None, Query(max_length=200, description="Only this speaker's turns")] = None,
    space: Annotated[str | None, Query(pattern=ID_PATTERN.pattern, description="Only this space (its id)")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> SearchResults:
    """Ranked turns (BM25 in SQLite, ts_rank in PostgreSQL) with deep links into the replay.

    Private spaces are searched only with a token for them, so their text
    never reaches anybody else.
    """
    hits = catalog.search(
        q, limit=limit, offset=offset, speaker=speaker, space_id=space, visible=visible_private(caller)
    )
    return SearchResults(
        query=q,
        hits=[SearchHitOut.of(h) for h in hits],
        next_offset=offset + limit if len(hits) == limit else None,
    )
