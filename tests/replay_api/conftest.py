"""A processed space, written exactly as the worker pipeline writes one.

Speech is synthesized with espeak-ng (``tests.speech``: known words at known
times), mixed and encoded like ``workers.mix`` (Opus in Ogg and AAC in MP4),
and published with the transcript, captions, search rows and a READY state,
so the API and the pages see what they see in production.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from replay_api.app import create_app
from replay_api.transcripts import webvtt
from spaces import hls, keys, tokens
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog
from spaces.models import Space, SpaceState, Transcript, Turn, Visibility, Word
from spaces.settings import Settings
from tests.conftest import MotoServer, registered_node
from tests.speech import VOICES, Utterance, build_space

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


def _turns(words: Sequence[Word]) -> tuple[Turn, ...]:
    turns: list[Turn] = []
    current: list[Word] = []
    for word in sorted(words, key=lambda w: w.start):
        if current and (word.speaker != current[-1].speaker or word.start - current[-1].end > 1.5):
            turns.append(Turn(current[0].speaker, tuple(current)))
            current = []
        current.append(word)
    if current:
        turns.append(Turn(current[0].speaker, tuple(current)))
    return tuple(turns)


def _encode(mix: Path, out_dir: Path) -> tuple[Path, Path]:
    """Both renditions, with the encoder settings of ``workers.mix``."""
    ogg, m4a = out_dir / "replay.ogg", out_dir / "replay.m4a"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(mix), "-ar", "48000", "-ac", "1",
         "-c:a", "libopus", "-b:a", "48k", str(ogg),
         "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(m4a)],
        check=True,
    )  # fmt: skip
    return ogg, m4a


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    out = tmp_path_factory.mktemp("recording")
    space = build_space(SCRIPT, {"alice": VOICES[0], "bob": VOICES[1]}, duration=DURATION, out_dir=out)
    ogg, m4a = _encode(space.mix, out)
    transcript = Transcript(
        space_id="template", duration=DURATION, speakers=("alice", "bob"), turns=_turns(space.words())
    )
    return Recording(ogg=ogg, m4a=m4a, transcript=transcript)


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
    # What the room agent leaves: the live HLS's entry point (the instant replay).
    master = hls.master(bandwidth=52800, codecs="mp4a.40.2", language="en").encode()
    blobs.put(hls.key(space_id, hls.MASTER), master, content_type=hls.PLAYLIST_TYPE)
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
    catalog.put_space(space)
    catalog.replace_turns(space_id, transcript.turns)
    catalog.set_state(space_id, SpaceState.READY)
    return catalog.get_space(space_id)


# --- the app, over both backends or the embedded ones only -------------------------


@pytest.fixture
def app(backend_settings: Settings) -> FastAPI:
    """The app on SQLite + a local directory, and on PostgreSQL + S3 (moto)."""
    return create_app(backend_settings)


@pytest.fixture
def local_app(settings: Settings) -> FastAPI:
    """The app on the embedded defaults only (for HTTP details both stores share)."""
    return create_app(settings)


@pytest.fixture
def s3_app(settings: Settings, moto_server: MotoServer, s3_bucket: str) -> FastAPI:
    """SQLite with S3 blobs: the API redirects audio to presigned URLs."""
    return create_app(replace(settings, s3_bucket=s3_bucket, s3_endpoint_url=moto_server.endpoint))


@pytest.fixture
def s3_client(s3_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(s3_app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def local_client(local_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(local_app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def published(app: FastAPI, recording: Recording) -> Space:
    return publish(app.state.catalog, app.state.blobs, recording)


@pytest.fixture
def local_published(local_app: FastAPI, recording: Recording) -> Space:
    return publish(local_app.state.catalog, local_app.state.blobs, recording)


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


@pytest.fixture(scope="session")
def ffmpeg_available() -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")


@pytest.fixture(autouse=True)
def sfu_node(settings: Settings) -> Iterator[None]:
    """A registered SFU node, so ``POST /spaces`` and join tokens have somewhere to place spaces."""
    with registered_node(settings, settings.sfu_url):
        yield
