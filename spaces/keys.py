"""The blob store layout (DESIGN.md, "Storage layout"), in one place."""

from __future__ import annotations

import re

from spaces.formats import AudioFormat

#: Ids we mint are url-safe; anything else in a path is refused at the edge.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def space_prefix(space_id: str) -> str:
    return f"spaces/{space_id}/"


def manifest(space_id: str) -> str:
    return f"spaces/{space_id}/manifest.json"


def track_prefix(space_id: str, track_id: str) -> str:
    return f"spaces/{space_id}/tracks/{track_id}/"


def segment(space_id: str, track_id: str, seq: int) -> str:
    return f"spaces/{space_id}/tracks/{track_id}/{seq:06d}.ogg"


def track_manifest(space_id: str, track_id: str) -> str:
    return f"spaces/{space_id}/tracks/{track_id}/track.json"


def words(space_id: str, track_id: str) -> str:
    return f"spaces/{space_id}/words/{track_id}.json"


def levels(space_id: str, track_id: str) -> str:
    """A track's loudness over time, for telling its speaker's voice from bleed."""
    return f"spaces/{space_id}/words/{track_id}.levels.json"


def language(space_id: str, track_id: str) -> str:
    """A track's detected language probabilities (when the space's language is ``auto``)."""
    return f"spaces/{space_id}/words/{track_id}.language.json"


def context_clips(space_id: str, track_id: str) -> str:
    """Audio of a track's unsure utterances, kept for the cross-speaker context pass."""
    return f"spaces/{space_id}/words/{track_id}.clips.npz"


def transcript(space_id: str) -> str:
    return f"spaces/{space_id}/transcript.json"


def replay(space_id: str, fmt: AudioFormat) -> str:
    return f"spaces/{space_id}/replay.{fmt}"


def captions(space_id: str, fmt: str) -> str:
    return f"spaces/{space_id}/captions.{fmt}"


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))
