"""An erasure whose work-horse is SIGKILLed mid-remix completes, exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from rq.job import JobStatus

from spaces import keys, layout, queue
from spaces.models import SpaceState, Transcript
from spaces.settings import Settings
from tests.speech import Space as SpeechSpace
from tests.support.faults import wait_until_running
from tests.support.workers import Workers, import_files, stores, work_horse

pytestmark = pytest.mark.slow

#: Long enough that the remix takes seconds (mostly silence: transcription stays cheap).
PADDED_SECONDS = 240


def padded(speech: SpeechSpace, out: Path) -> dict[str, Path]:
    files = {}
    for speaker, path in dict(speech).items():
        target = out / f"{speaker}-padded.wav"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(path),
             "-af", f"apad=whole_dur={PADDED_SECONDS}", str(target)],
            check=True,
        )  # fmt: skip
        files[speaker] = target
    return files


def test_erasure_survives_a_killed_work_horse(
    settings: Settings, worker_procs: Workers, two_speakers: SpeechSpace, tmp_path: Path
) -> None:
    blobs, catalog = stores(settings)
    space = import_files(settings, padded(two_speakers, tmp_path))
    sid = space.space_id
    worker = worker_procs.start(settings)
    queue.enqueue_finalize(settings, sid)
    assert worker_procs.wait_for(catalog, sid, timeout=600).state is SpaceState.READY
    before = Transcript.from_dict(json.loads(blobs.get(keys.transcript(sid))))
    bob_turns = [t for t in before.turns if t.speaker == "bob"]
    assert bob_turns

    assert catalog.request_erasure(sid, "bob", now=time.time())
    queue.enqueue_erasure(settings, sid, "bob")
    slug = queue.speaker_slug("bob")
    mix = wait_until_running(settings, f"erase-{slug}-mix")
    os.kill(work_horse(worker.pid), signal.SIGKILL)

    deadline = time.monotonic() + 600
    while catalog.erasures(sid).get("bob") != "erased":
        assert time.monotonic() < deadline, worker_procs.logs()
        time.sleep(0.2)
    mix.refresh()
    assert mix.get_status() is JobStatus.FINISHED
    assert mix.retries_left == settings.job_retries - 1  # killed once, run again
    after = Transcript.from_dict(json.loads(blobs.get(keys.transcript(sid))))
    assert [w.to_dict() for w in after.words] == [w.to_dict() for w in before.words if w.speaker != "bob"]
    # One gap per erased turn: no stage applied twice.
    assert [(g.start, g.end) for g in after.gaps] == [(t.start, t.end) for t in bob_turns]
    manifest = layout.read_manifest(blobs, sid)
    assert [s for _, s in manifest.erased] == ["bob"] and [s for _, s in manifest.tracks] == ["alice"]
    assert list(blobs.list(keys.track_prefix(sid, manifest.erased[0][0]))) == []
    assert catalog.search("project schedule", limit=10) == []
    registry = queue.pipeline_queue(settings).finished_job_registry.get_job_ids()
    assert sorted(j.rsplit("-", 1)[-1] for j in registry if f"erase-{slug}" in j) == sorted(
        [slug, "words", "mix", "audio", "done"]
    )
    assert catalog.get_space(sid).state is SpaceState.READY
