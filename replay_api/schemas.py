"""Pydantic models at the API edge, converted from the domain dataclasses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from spaces import hls, names
from spaces.blobstore import BlobStore
from spaces.exceptions import InvalidInput
from spaces.languages import AUTO, check_language, language_note
from spaces.models import SearchHit, Space, SpaceState, SpeakerLanguage, Transcript, Turn, Visibility, Word
from spaces.nodes import Node
from spaces.settings import RETENTION_KINDS, Settings

#: States in which a space may have a live HLS (from going live on).
HAS_HLS = (SpaceState.LIVE, SpaceState.RECORDED, SpaceState.PROCESSING, SpaceState.READY, SpaceState.FAILED)


def space_links(space_id: str) -> dict[str, str]:
    base = f"/spaces/{space_id}"
    return {
        "self": base,
        "replay": f"{base}/replay",
        "audio": f"{base}/audio",
        "audio_m4a": f"{base}/audio?format=m4a",
        "captions_vtt": f"{base}/captions.vtt",
        "captions_srt": f"{base}/captions.srt",
        "transcript": f"{base}/transcript",
    }


def replay_link(space_id: str, seconds: float) -> str:
    """The deep link into the replay page; times on the room clock, centisecond precision."""
    return f"/spaces/{space_id}/replay?t={seconds:.2f}"


def hls_url(settings: Settings, blobs: BlobStore, space: Space) -> str | None:
    """Where a player finds the space's master playlist, or None while it has none."""
    if space.state not in HAS_HLS or not blobs.exists(hls.key(space.space_id, hls.MASTER)):
        return None
    if settings.hls_base_url and space.visibility is Visibility.PUBLIC:
        return f"{settings.hls_base_url.rstrip('/')}/{hls.key(space.space_id, hls.MASTER)}"
    return f"/spaces/{space.space_id}/hls/{hls.MASTER}"


def live_link(space_id: str) -> str:
    """The live page of a space on air (a live room has no past to seek in)."""
    return f"/spaces/{space_id}/live"


class _SpaceFields(BaseModel):
    id: str
    title: str
    host: str
    state: str
    visibility: str
    created_at: float = Field(description="Unix time the space was created")
    duration: float = Field(description="Length of the space in seconds")
    progress: dict[str, float] = Field(description="Processing progress per pipeline stage, 0..1")
    error: str | None
    partial: bool = Field(description="True if the recording ended uncleanly and may miss its end")
    language: str = Field(description="Set by the host (a Whisper code), or `auto`: each speaker's detected")
    links: dict[str, str]

    @staticmethod
    def fields_of(space: Space) -> dict[str, Any]:
        return {
            "id": space.space_id,
            "title": space.title,
            "host": space.host,
            "state": str(space.state),
            "visibility": str(space.visibility),
            "created_at": space.created_at,
            "duration": space.duration,
            "progress": space.progress,
            "error": space.error,
            "partial": space.partial,
            "language": space.language,
            "links": space_links(space.space_id),
        }


class SpaceOut(_SpaceFields):
    """A space in a listing."""

    speakers: list[str]

    @classmethod
    def of(cls, space: Space) -> SpaceOut:
        return cls(**cls.fields_of(space), speakers=list(space.speakers))


class SpeakerOut(BaseModel):
    name: str
    talk_time: float = Field(description="Seconds this speaker talked (sum of their turns)")
    erasure: str | None = Field(
        None, description="erasing (their erasure runs; see progress erase:NAME) or erased; null if neither"
    )
    language: str | None = Field(None, description="Language their track was transcribed in (once transcribed)")
    language_source: str | None = Field(
        None, description="`set` (the space's), `detected` (from their speech) or `model` (an English-only model)"
    )
    language_probability: float | None = Field(None, description="Detection's confidence (1 when set)")
    model_speaks_language: bool | None = Field(
        None, description="False when the model does not know the language: the transcript is the model's best try"
    )
    note: str | None = Field(None, description="Plain words about the speaker's language, when something is off")

    @classmethod
    def of(
        cls, name: str, talk_time: float, language: SpeakerLanguage | None, erasure: str | None = None
    ) -> SpeakerOut:
        if language is None:
            return cls(
                name=name,
                talk_time=talk_time,
                erasure=erasure,
                language=None,
                language_source=None,
                language_probability=None,
                model_speaks_language=None,
                note=None,
            )
        return cls(
            name=name,
            talk_time=talk_time,
            erasure=erasure,
            language=language.language,
            language_source=language.source,
            language_probability=language.probability,
            model_speaks_language=language.model_speaks,
            note=None if language.model_speaks else language_note(name, language.language),
        )


class SpaceDetail(_SpaceFields):
    """One space, with every speaker's talk time."""

    speakers: list[SpeakerOut] = Field(description="Speakers in the order they joined")

    erased: list[str] = Field(default_factory=list, description="Speakers erased from this space")

    hls_url: str | None = Field(
        None,
        description="The live HLS master playlist (while live and after the end: the instant replay); "
        "null while there is none",
    )

    @classmethod
    def of(cls, space: Space, talk_times: dict[str, float], erasures: dict[str, str] | None = None) -> SpaceDetail:
        erasures = erasures or {}
        names = list(space.speakers) + sorted((set(talk_times) | set(erasures)) - set(space.speakers))
        return cls(
            **cls.fields_of(space),
            speakers=[SpeakerOut.of(n, talk_times.get(n, 0.0), space.languages.get(n), erasures.get(n)) for n in names],
            erased=[n for n, state in erasures.items() if state == "erased"],
        )


class SpaceList(BaseModel):
    items: list[SpaceOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page")


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
    language: str = Field(description="Language the turn was transcribed in (empty if not known)")
    words: list[WordOut]

    @classmethod
    def of(cls, turn: Turn) -> TurnOut:
        return cls(
            speaker=turn.speaker,
            language=turn.language,
            start=round(turn.start, 3),
            end=round(turn.end, 3),
            text=turn.text,
            words=[WordOut.of(w) for w in turn.words],
        )


class GapOut(BaseModel):
    speaker: str
    start: float
    end: float
    reason: str = Field(description="erased (removed on request) or not_recorded (spoke without being recorded)")


class TranscriptOut(BaseModel):
    space_id: str
    duration: float
    speakers: list[str]
    language: str = Field(description="The space's language as set (`auto`: per speaker)")
    languages: dict[str, str] = Field(description="Each speaker's language as transcribed")
    window_start: float | None = Field(None, description="Start of the requested window (?from=)")
    window_end: float | None = Field(None, description="End of the requested window (?to=)")
    turns: list[TurnOut]
    gaps: list[GapOut] = Field(default_factory=list, description="Speech kept out of the transcript, with why")

    @classmethod
    def of(cls, transcript: Transcript, *, start: float | None = None, end: float | None = None) -> TranscriptOut:
        return cls(
            space_id=transcript.space_id,
            duration=transcript.duration,
            speakers=list(transcript.speakers),
            language=transcript.language,
            languages={name: lang.language for name, lang in transcript.languages.items()},
            window_start=start,
            window_end=end,
            turns=[TurnOut.of(t) for t in transcript.turns],
            gaps=[GapOut(**g.to_dict()) for g in transcript.gaps],
        )


class SearchHitOut(BaseModel):
    space_id: str
    space_title: str
    speaker: str
    start: float
    end: float
    snippet: str = Field(description="HTML-escaped text with the matched words in <mark>")
    rank: float = Field(description="Relevance (higher is better); comparable within one backend only")
    link: str = Field(description="Deep link to the moment in the replay page, or the live page while on air")
    live: bool = Field(False, description="The space is on air: the words are from its live captions")
    language: str = Field(description="The turn's language (the query was analysed in it)")

    @classmethod
    def of(cls, hit: SearchHit) -> SearchHitOut:
        return cls(
            space_id=hit.space_id,
            space_title=hit.space_title,
            speaker=hit.speaker,
            start=round(hit.start, 3),
            end=round(hit.end, 3),
            snippet=hit.snippet,
            rank=hit.rank,
            link=live_link(hit.space_id) if hit.live else replay_link(hit.space_id, hit.start),
            live=hit.live,
            language=hit.language,
        )


class SearchResults(BaseModel):
    query: str
    hits: list[SearchHitOut]
    next_offset: int | None = Field(description="Pass as ?offset= for the next page")


class ClipOut(BaseModel):
    space_id: str
    start: float
    end: float
    text: str
    turns: list[TurnOut]
    links: dict[str, str]


# --- live spaces (routes/live.py) ---


class NewSpace(BaseModel):
    title: str = Field(pattern=names.TITLE_PATTERN, description="Shown on the live page and the replay; one line")
    visibility: Visibility = Visibility.PUBLIC
    host: str = Field(default="host", pattern=names.NAME_PATTERN, description="The host's name in the space")
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
    identity: str | None = Field(
        default=None, pattern=names.NAME_PATTERN, description="Name in the space; default: random"
    )


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


class NodeOut(BaseModel):
    """An SFU node and the load it last reported."""

    node_id: str
    url: str
    alive: bool = Field(description="False once it missed its heartbeats: nothing is placed on it")
    rooms: int
    pending: int = Field(description="Spaces placed on it that nobody joined yet")
    participants: int
    packets_per_s: float = Field(description="RTP packets forwarded per second")
    cpu: float = Field(description="Fraction of one core its process uses")
    heartbeat_at: float

    @classmethod
    def of(cls, node: Node) -> NodeOut:
        return cls(
            node_id=node.node_id,
            url=node.url,
            alive=node.alive,
            rooms=node.load.rooms,
            pending=node.pending,
            participants=node.load.participants,
            packets_per_s=node.load.packets_per_s,
            cpu=node.load.cpu,
            heartbeat_at=node.heartbeat_at,
        )


# --- privacy (routes/privacy.py) ---


class Accepted(BaseModel):
    space_id: str
    state: str = Field(description="deleting, or erasing")
    speaker: str | None = None
    job_id: str


class ErasureLink(BaseModel):
    space_id: str
    speaker: str
    token: str = Field(description="The erasure token: send as Authorization: Bearer, or ?token=")
    url: str = Field(description="DELETE this URL (token included) to erase the speaker")
    expires_in: int


class RetentionIn(BaseModel):
    days: float | None = Field(gt=0, description="Delete what is older than this many days; null = the default")
    keep: list[str] = Field(default_factory=list, description=f"Kept past it: any of {sorted(RETENTION_KINDS)}")
