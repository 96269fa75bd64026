"""A processed space, written exactly as the worker pipeline writes one.

Speech is synthesized with espeak-ng (``tests.speech``: known words at known
times), mixed and encoded like ``workers.mix`` (Opus in Ogg and AAC in MP4),
and published with the transcript, captions, search rows and a READY state,
so the API and the pages see what they see in production.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from replay_api.app import create_app
from spaces.models import Space, Transcript, Turn, Word
from spaces.settings import Settings
from tests.speech import VOICES, build_space
from tests.support.replay import DURATION, SCRIPT, Recording, publish
from tests.support.services import MotoServer, registered_node


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


@pytest.fixture(scope="session")
def ffmpeg_available() -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")


@pytest.fixture(autouse=True)
def sfu_node(settings: Settings) -> Iterator[None]:
    """A registered SFU node, so ``POST /spaces`` and join tokens have somewhere to place spaces."""
    with registered_node(settings, settings.sfu_url):
        yield
