"""Domain objects shared by every stage.

Plain frozen dataclasses: the stages exchange them through the blob store (as
JSON, see ``to_dict``/``from_dict``) and the catalog. Pydantic lives only at
the API edge (``replay_api/schemas.py``).

Every time in these objects is in seconds on the *room clock*: zero is the
moment the space started (``Space.started_at`` in wall-clock terms).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


class SpaceState(enum.StrEnum):
    """Life cycle of a space: created -> live -> ended -> recorded -> processing -> ready | failed.

    The one vocabulary for a space's state wherever it is kept: the catalog,
    a live room on the SFU (``Room.state``) and the room's record on the
    spool (``RoomRecord.phase``). ``ENDED`` is the SFU's alone: the room is
    over and every segment closed and synced, but not yet handed over (the
    catalog goes from ``LIVE`` straight to ``RECORDED``). A room closed
    before anyone spoke goes back to ``CREATED``. ``EMPTY``: created, but
    nobody joined in time; over, with nothing to show.
    """

    CREATED = "created"
    LIVE = "live"
    ENDED = "ended"
    RECORDED = "recorded"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    EMPTY = "empty"
    DELETING = "deleting"
    """The host asked for the space to be deleted: it answers 404 from then on,
    and its deletion jobs remove every object and row under its id."""


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


@dataclass(frozen=True)
class Segment:
    """One stored piece of a speaker's track (an Ogg/Opus file).

    ``offset`` places the first sample of the segment on the room clock;
    gaps between segments (silence, a speaker who left and came back) are
    simply not covered by any segment.
    """

    seq: int
    key: str
    offset: float
    duration: float


@dataclass(frozen=True)
class Track:
    """All audio of one speaker in one space."""

    track_id: str
    speaker: str
    segments: tuple[Segment, ...] = ()

    @property
    def start(self) -> float:
        return min((s.offset for s in self.segments), default=0.0)

    @property
    def end(self) -> float:
        return max((s.offset + s.duration for s in self.segments), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Track:
        return cls(
            track_id=data["track_id"],
            speaker=data["speaker"],
            segments=tuple(Segment(**s) for s in data.get("segments", ())),
        )


@dataclass(frozen=True)
class Word:
    """A recognized word, on the room clock, attributed to a speaker.

    ``text`` is stripped of Whisper's leading space; punctuation stays on it.
    """

    start: float
    end: float
    text: str
    speaker: str
    probability: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "speaker": self.speaker,
            "probability": round(self.probability, 4),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Word:
        return cls(
            start=float(data["start"]),
            end=float(data["end"]),
            text=str(data["text"]),
            speaker=str(data["speaker"]),
            probability=float(data.get("probability", 1.0)),
        )


@dataclass(frozen=True)
class Turn:
    """An uninterrupted stretch of one speaker's words."""

    speaker: str
    words: tuple[Word, ...]
    language: str = ""
    """Whisper code of the language the turn was transcribed in ("" = not known)."""

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    @property
    def text(self) -> str:
        return join_words(w.text for w in self.words)

    def to_dict(self) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "language": self.language,
            "words": [w.to_dict() for w in self.words],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        return cls(
            speaker=str(data["speaker"]),
            words=tuple(Word.from_dict(w) for w in data["words"]),
            language=str(data.get("language", "")),
        )


@dataclass(frozen=True)
class Gap:
    """A stretch of the room where someone spoke but nothing of it is kept.

    ``reason``: ``erased`` (the speaker was erased from the replay) or
    ``not_recorded`` (they chose to speak without being recorded).
    """

    speaker: str
    start: float
    end: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gap:
        return cls(str(data["speaker"]), float(data["start"]), float(data["end"]), str(data["reason"]))


@dataclass(frozen=True)
class SpeakerLanguage:
    """The language one speaker's track was transcribed in, and why."""

    language: str
    source: str = "set"
    """``set`` (the space's language), ``detected`` (from the speech), ``model`` (an English-only model)."""
    probability: float = 1.0
    """Detection's confidence (1 when set)."""
    model_speaks: bool = True
    """False when the model does not know the language (an English-only model on French)."""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "probability": round(self.probability, 3)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeakerLanguage:
        return cls(
            language=str(data["language"]),
            source=str(data.get("source", "set")),
            probability=float(data.get("probability", 1.0)),
            model_speaks=bool(data.get("model_speaks", True)),
        )


def languages_to_dict(languages: dict[str, SpeakerLanguage]) -> dict[str, dict[str, Any]]:
    return {name: lang.to_dict() for name, lang in sorted(languages.items())}


def languages_from_dict(data: dict[str, Any] | None) -> dict[str, SpeakerLanguage]:
    return {name: SpeakerLanguage.from_dict(d) for name, d in (data or {}).items()}


@dataclass(frozen=True)
class Transcript:
    """The speaker-attributed transcript of a whole space."""

    space_id: str
    duration: float
    speakers: tuple[str, ...]
    turns: tuple[Turn, ...]
    gaps: tuple[Gap, ...] = ()
    language: str = "auto"
    """The space's language as set by its host (``auto``: per speaker, detected)."""
    languages: dict[str, SpeakerLanguage] = field(default_factory=dict)
    """Per speaker: the language their track was transcribed in."""

    @property
    def words(self) -> list[Word]:
        return [w for t in self.turns for w in t.words]

    def to_dict(self) -> dict[str, Any]:
        return {
            "space_id": self.space_id,
            "duration": round(self.duration, 3),
            "speakers": list(self.speakers),
            "language": self.language,
            "languages": languages_to_dict(self.languages),
            "turns": [t.to_dict() for t in self.turns],
            "gaps": [g.to_dict() for g in self.gaps],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        return cls(
            space_id=str(data["space_id"]),
            duration=float(data["duration"]),
            speakers=tuple(data["speakers"]),
            turns=tuple(Turn.from_dict(t) for t in data["turns"]),
            gaps=tuple(Gap.from_dict(g) for g in data.get("gaps", ())),
            language=str(data.get("language", "auto")),
            languages=languages_from_dict(data.get("languages")),
        )


@dataclass(frozen=True)
class Caption:
    """A live caption event: one speaker's utterance so far (interim) or as it stands (final).

    Events of one speaker carry increasing ``seq``; an interim is replaced by
    the next event of the same ``utterance``, and the final one is kept until
    a *settled* one (``settled``: the utterance heard again with the room's
    speech around it, :mod:`transcribe.revision`) replaces it, once.
    """

    speaker: str
    text: str
    start: float
    end: float
    final: bool
    seq: int
    utterance: int
    words: tuple[Word, ...] = ()
    lines: tuple[str, ...] = ()
    """What a caption line shows now: the utterance's last cue (``spaces.captions``, the
    replay's rules: at most 2 lines of 42 characters); ``text`` is all of it."""
    settled: bool = False
    """The utterance's last word: it replaces the final (``final`` is true too)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "text": self.text,
            "lines": list(self.lines),
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "final": self.final,
            "seq": self.seq,
            "utterance": self.utterance,
            "words": [w.to_dict() for w in self.words],
            "settled": self.settled,
        }


@dataclass(frozen=True)
class Space:
    """Catalog metadata of a space."""

    space_id: str
    title: str
    host: str
    created_at: float
    state: SpaceState = SpaceState.CREATED
    visibility: Visibility = Visibility.PUBLIC
    duration: float = 0.0
    speakers: tuple[str, ...] = ()
    error: str | None = None
    progress: dict[str, float] = field(default_factory=dict)
    """Stage -> share done, of the pipeline run ``run`` only."""
    partial: bool = False
    run: int = 0
    """The pipeline run the state and progress belong to (0 = the first; ``spaces reprocess`` adds one)."""
    published: bool = False
    """A run's outputs (transcript, replay) were complete once: they are served and
    searched while a later run replaces them."""
    node: str = ""
    """The SFU node the space was placed on (``spaces.router``); empty if never placed."""
    language: str = "auto"
    """Set by the host (a Whisper code), or ``auto``: each speaker's detected."""
    languages: dict[str, SpeakerLanguage] = field(default_factory=dict)
    """Per speaker, once transcribed: the language used and whether the model speaks it."""


@dataclass(frozen=True)
class Manifest:
    """``spaces/{id}/manifest.json``: what a space is made of.

    ``started_at`` is the wall-clock time (Unix seconds) of room-clock zero.
    ``tracks`` maps track ids to speaker names; each track's segments are in
    its own ``track.json``, written as segments land.
    """

    space_id: str
    title: str
    host: str
    started_at: float
    visibility: Visibility = Visibility.PUBLIC
    tracks: tuple[tuple[str, str], ...] = ()
    ended_at: float | None = None
    partial: bool = False
    erased: tuple[tuple[str, str], ...] = ()
    """Tracks (id, speaker) erased from the space: their audio deleted, out of every output."""
    consents: tuple[tuple[str, float, bool], ...] = ()
    """(speaker, room time, recorded?): the recording choices speakers made, in order."""
    unrecorded: tuple[tuple[str, float, float], ...] = ()
    """(speaker, start, end): when speakers who chose not to be recorded spoke (room clock)."""
    language: str = "auto"
    """The space's language (see :attr:`Space.language`)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tracks"] = [{"track_id": t, "speaker": s} for t, s in self.tracks]
        data["erased"] = [{"track_id": t, "speaker": s} for t, s in self.erased]
        data["consents"] = [{"speaker": s, "at": round(t, 3), "record": r} for s, t, r in self.consents]
        data["unrecorded"] = [{"speaker": s, "start": round(a, 3), "end": round(b, 3)} for s, a, b in self.unrecorded]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            space_id=data["space_id"],
            title=data["title"],
            host=data["host"],
            started_at=float(data["started_at"]),
            visibility=Visibility(data.get("visibility", "public")),
            tracks=tuple((t["track_id"], t["speaker"]) for t in data.get("tracks", ())),
            ended_at=data.get("ended_at"),
            partial=bool(data.get("partial", False)),
            erased=tuple((t["track_id"], t["speaker"]) for t in data.get("erased", ())),
            consents=tuple((c["speaker"], float(c["at"]), bool(c["record"])) for c in data.get("consents", ())),
            unrecorded=tuple((u["speaker"], float(u["start"]), float(u["end"])) for u in data.get("unrecorded", ())),
            language=str(data.get("language", "auto")),
        )


@dataclass(frozen=True)
class SearchHit:
    """One turn matching a full-text query."""

    space_id: str
    space_title: str
    speaker: str
    start: float
    end: float
    snippet: str
    rank: float
    live: bool = False
    """The space is on air now: the moment is in its live page, not yet in a replay."""
    language: str = ""
    """The turn's language (snippets keep its accents)."""


def join_words(texts: Iterable[str]) -> str:
    """Join word texts (stored stripped; punctuation stays on its word)."""
    return " ".join(t for t in texts if t)
