"""Pydantic models at the API edge, converted from the domain dataclasses."""

from __future__ import annotations

from pydantic import BaseModel

from spaces.models import SearchHit, Space, Transcript, Turn, Word


class SpaceOut(BaseModel):
    id: str
    title: str
    host: str
    state: str
    visibility: str
    created_at: float
    duration: float
    speakers: list[str]
    progress: dict[str, float]
    error: str | None
    partial: bool
    links: dict[str, str]

    @classmethod
    def of(cls, space: Space) -> SpaceOut:
        base = f"/spaces/{space.space_id}"
        return cls(
            id=space.space_id,
            title=space.title,
            host=space.host,
            state=str(space.state),
            visibility=str(space.visibility),
            created_at=space.created_at,
            duration=space.duration,
            speakers=list(space.speakers),
            progress=space.progress,
            error=space.error,
            partial=space.partial,
            links={
                "self": base,
                "transcript": f"{base}/transcript",
                "captions": f"{base}/captions.vtt",
                "replay": f"{base}/replay",
            },
        )


class SpaceList(BaseModel):
    items: list[SpaceOut]
    next_cursor: str | None


class WordOut(BaseModel):
    start: float
    end: float
    text: str
    speaker: str
    probability: float

    @classmethod
    def of(cls, word: Word) -> WordOut:
        return cls(**word.to_dict())


class TurnOut(BaseModel):
    speaker: str
    start: float
    end: float
    text: str
    words: list[WordOut]

    @classmethod
    def of(cls, turn: Turn) -> TurnOut:
        return cls(
            speaker=turn.speaker,
            start=turn.start,
            end=turn.end,
            text=turn.text,
            words=[WordOut.of(w) for w in turn.words],
        )


class TranscriptOut(BaseModel):
    space_id: str
    duration: float
    speakers: list[str]
    turns: list[TurnOut]

    @classmethod
    def of(cls, transcript: Transcript) -> TranscriptOut:
        return cls(
            space_id=transcript.space_id,
            duration=transcript.duration,
            speakers=list(transcript.speakers),
            turns=[TurnOut.of(t) for t in transcript.turns],
        )


class SearchHitOut(BaseModel):
    space_id: str
    space_title: str
    speaker: str
    start: float
    end: float
    snippet: str
    link: str

    @classmethod
    def of(cls, hit: SearchHit) -> SearchHitOut:
        return cls(
            space_id=hit.space_id,
            space_title=hit.space_title,
            speaker=hit.speaker,
            start=hit.start,
            end=hit.end,
            snippet=hit.snippet,
            link=f"/spaces/{hit.space_id}/replay?t={hit.start:.2f}",
        )


class SearchResults(BaseModel):
    query: str
    hits: list[SearchHitOut]
    next_offset: int | None
