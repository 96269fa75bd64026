"""A real SFU (in-process or a subprocess), spaces, tokens and speech for SFU tests and benches.

Peers are real aiortc peer connections over loopback; importing this module
restricts ICE to 127.0.0.1 for the whole process, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import numpy.typing as npt
import uvicorn

from ingest.ice import restrict_host_addresses
from ingest.server import Sfu, create_app, uvicorn_config
from spaces import tokens
from spaces.catalog import open_catalog
from spaces.models import Space, SpaceState, Visibility
from spaces.settings import Settings
from tests.speech import SAMPLE_RATE as SPEECH_RATE
from tests.speech import VOICES, synthesize
from tests.support.services import settings_env, wait_for_port

restrict_host_addresses(["127.0.0.1"])


RATE = 48000


def sfu_stats(settings: Settings) -> dict[str, Any]:
    """The SFU's ``/stats`` with per-room detail (the operator's view)."""
    response = httpx.get(
        f"http://127.0.0.1:{settings.sfu_port}/stats",
        headers={"Authorization": f"Bearer {settings.operator_token}"},
        timeout=10,
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


async def wait_until(predicate: Callable[[], object], timeout: float) -> None:
    """Wait, without blocking the loop, until ``predicate()`` is truthy."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)


def make_space(settings: Settings, *, title: str = "Test space", visibility: Visibility = Visibility.PUBLIC) -> str:
    space_id = uuid.uuid4().hex[:16]
    catalog = open_catalog(settings)
    catalog.create_schema()
    catalog.put_space(Space(space_id=space_id, title=title, host="host", created_at=time.time(), visibility=visibility))
    catalog.close()
    return space_id


def get_space(settings: Settings, space_id: str) -> Space:
    catalog = open_catalog(settings)
    try:
        return catalog.get_space(space_id)
    finally:
        catalog.close()


def token(settings: Settings, space_id: str, identity: str, role: tokens.Role, ttl: int = 600) -> str:
    return tokens.issue(settings.secret_key, space_id=space_id, role=role, identity=identity, ttl=ttl)


def rtc_url(settings: Settings, space_id: str) -> str:
    return f"ws://127.0.0.1:{settings.sfu_port}/spaces/{space_id}/rtc"


def speech48k(text: str, voice: str, *, lead: float = 0.0, tail: float = 0.0) -> npt.NDArray[np.int16]:
    """espeak-ng speech as 48 kHz int16 mono, with ``lead``/``tail`` seconds of silence."""
    speech = synthesize(text, voice)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    frame = av.AudioFrame.from_ndarray(
        (np.clip(speech.samples, -1, 1) * 20000).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = SPEECH_RATE
    parts = [f.to_ndarray().reshape(-1) for f in (*resampler.resample(frame), *resampler.resample(None))]
    body = np.concatenate(parts).astype(np.int16)
    return np.concatenate([np.zeros(int(lead * RATE), np.int16), body, np.zeros(int(tail * RATE), np.int16)]).astype(
        np.int16
    )


VOICE_A, VOICE_B = VOICES[0], VOICES[1]


@dataclass
class RunningSfu:
    settings: Settings
    sfu: Sfu
    server: uvicorn.Server


@contextlib.asynccontextmanager
async def running_sfu(settings: Settings) -> AsyncIterator[RunningSfu]:
    """The SFU app served by uvicorn inside the current event loop."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings))
    task = asyncio.get_running_loop().create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise TimeoutError("SFU did not start")
        await asyncio.sleep(0.02)
    try:
        yield RunningSfu(settings, app.state.sfu, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def sfu_env(settings: Settings) -> dict[str, str]:
    """An SFU node's environment: ``settings``, listening on loopback."""
    return settings_env(settings, SPACES_SFU_HOST="127.0.0.1")


@contextlib.contextmanager
def sfu_process(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m ingest`` as a child process (killed at the end if still alive)."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest"], env=sfu_env(settings), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        # A node starts in a few seconds; the bound is for a loaded machine (another test starting a stack).
        wait_for_port(settings.sfu_port, timeout=60)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def is_recorded(settings: Settings, space_id: str) -> bool:
    return get_space(settings, space_id).state is SpaceState.RECORDED
