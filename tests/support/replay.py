"""A processed space written exactly as the worker pipeline writes one, and tokens to read it."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from replay_api.transcripts import webvtt
from spaces import hls, keys, tokens
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.models import Space, SpaceState, Transcript, Visibility, Word
from spaces.settings import Settings
from tests.speech import Utterance

SCRIPT = (
    Utterance("alice", 0.5, "Welcome everyone to the card table tonight."),
    Utterance("bob", 4.0, "Thanks Alice, I brought the ten of clubs."),
    Utterance("alice", 7.5, "Lovely. Let us talk about the queen of hearts."),
    Utterance("bob", 11.5, "The river card decided everything in the final round."),
    Utterance("alice", 16.0, "Bob shuffles slowly but deals like a professional."),
)


DURATION = 20.0


@dataclass(frozen=True)
class Recording:
    """A finished space's files, rendered once per test session."""

    ogg: Path
    m4a: Path
    transcript: Transcript

    @property
    def words(self) -> list[Word]:
        return self.transcript.words

    def word(self, text: str) -> Word:
        return next(w for w in self.words if w.text.strip(".,").lower() == text.lower())


def srt(transcript: Transcript) -> str:
    """SRT from the same cues as the WebVTT (numbered, comma decimals, no voice tags)."""
    blocks = []
    for block in webvtt(transcript).split("\n\n")[1:]:
        lines = block.strip().splitlines()
        if len(lines) < 3:
            continue
        number, timing, text = lines[0], lines[1].replace(".", ","), lines[2]
        speaker, _, said = text.removeprefix("<v ").partition(">")
        blocks.append(f"{number}\n{timing}\n{speaker}: {said}\n")
    return "\n".join(blocks)


Publisher = Callable[..., Space]


def publish(
    catalog: Catalog,
    blobs: BlobStore,
    recording: Recording,
    *,
    space_id: str | None = None,
    title: str = "Card night",
    host: str = "alice",
    visibility: Visibility = Visibility.PUBLIC,
    created_at: float = 1_700_000_000.0,
    transcript: Transcript | None = None,
) -> Space:
    """Write a space's replay, captions, transcript and search rows; mark it READY."""
    space_id = space_id or f"sp-{uuid.uuid4().hex[:10]}"
    source = transcript or recording.transcript
    transcript = Transcript(space_id, source.duration, source.speakers, source.turns)
    blobs.put_file(keys.replay(space_id, "ogg"), recording.ogg, content_type="audio/ogg")
    blobs.put_file(keys.replay(space_id, "m4a"), recording.m4a, content_type="audio/mp4")
    blobs.put(keys.transcript(space_id), json.dumps(transcript.to_dict()).encode(), content_type="application/json")
    blobs.put(keys.captions(space_id, "vtt"), webvtt(transcript).encode(), content_type="text/vtt")
    blobs.put(keys.captions(space_id, "srt"), srt(transcript).encode(), content_type="application/x-subrip")
    space = Space(
        space_id=space_id,
        title=title,
        host=host,
        created_at=created_at,
        state=SpaceState.PROCESSING,
        visibility=visibility,
        duration=transcript.duration,
        speakers=transcript.speakers,
    )
    # What the room agent leaves: the live HLS's entry point (the instant replay).
    master = hls.master(bandwidth=52800, codecs="mp4a.40.2", language="en").encode()
    blobs.put(hls.key(space_id, hls.MASTER), master, content_type=hls.PLAYLIST_TYPE)
    catalog.put_space(space)
    catalog.replace_turns(space_id, transcript.turns)
    catalog.set_state(space_id, SpaceState.READY)
    return catalog.get_space(space_id)


def token_for(settings: Settings, space_id: str, *, ttl: int = 600, secret: str | None = None) -> str:
    return tokens.issue(
        secret or settings.secret_key,
        space_id=space_id,
        role=tokens.Role.LISTENER,
        identity="tester",
        ttl=ttl,
    )


def ffprobe_duration(data: bytes, tmp_path: Path, suffix: str) -> float:
    path = tmp_path / f"probe-{uuid.uuid4().hex[:6]}{suffix}"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip())
