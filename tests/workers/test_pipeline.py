"""The pipeline with real worker processes, on both storage backends."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from rq.job import Job, JobStatus

from spaces import keys, queue
from spaces.exceptions import NotFound
from spaces.layout import read_manifest
from spaces.models import SpaceState, Transcript
from spaces.settings import Settings
from tests.media import duration
from tests.scoring import normalized_wer
from tests.speech import Space as SpeechSpace
from tests.support.workers import DURATION, UTTERANCES, Workers, finished, import_files, stores, wait_for
from transcribe.levels import Levels

pytestmark = pytest.mark.slow

#: tiny.en itself mishears these espeak voices a little: plain faster-whisper on
#: the same files scores about 0.17 on the worst track.
MAX_WER = 0.3


def test_pipeline_writes_every_output(
    backend_settings: Settings, backend_workers: Workers, two_speakers: SpeechSpace, tmp_path: Path
) -> None:
    settings = backend_settings
    blobs, catalog = stores(settings)
    space = import_files(settings, dict(two_speakers))
    backend_workers.start()
    queue.enqueue_finalize(settings, space.space_id)
    done = wait_for(catalog, space.space_id, finished)
    assert done.state is SpaceState.READY, done.error
    assert done.duration == pytest.approx(DURATION, abs=0.1)
    assert set(done.progress) >= {"transcribe:alice", "transcribe:bob", "mix", "assemble"}
    assert all(v == 1.0 for v in done.progress.values())

    transcript = Transcript.from_dict(json.loads(blobs.get(keys.transcript(space.space_id))))
    for speaker, truth in two_speakers.truth.items():
        said = " ".join(w.text for w in transcript.words if w.speaker == speaker)
        assert normalized_wer(" ".join(w.text for w in truth), said) < MAX_WER, said
    assert [t.speaker for t in transcript.turns] == [u.speaker for u in UTTERANCES]
    for turn, u in zip(transcript.turns, UTTERANCES, strict=True):
        assert turn.start == pytest.approx(u.start, abs=0.5)

    vtt = blobs.get(keys.captions(space.space_id, "vtt")).decode()
    srt = blobs.get(keys.captions(space.space_id, "srt")).decode()
    assert "<v bob>" in vtt and "schedule" in srt

    hits = catalog.search("wonderful book", limit=5)
    assert [(h.space_id, h.speaker) for h in hits] == [(space.space_id, "alice")]

    replay = tmp_path / "replay.ogg"
    blobs.download(keys.replay(space.space_id, "ogg"), replay)
    assert duration(replay) == pytest.approx(DURATION, abs=0.05)


def test_finalize_enqueued_twice_runs_once_and_a_reprocess_replaces_outputs(
    settings: Settings, workers: Workers, two_speakers: SpeechSpace
) -> None:
    # One space for both: the reprocess starts from the run checked to have happened once
    # (a pipeline run of its own would cost a third of this module's time).
    blobs, catalog = stores(settings)
    space = import_files(settings, dict(two_speakers))
    first = queue.enqueue_finalize(settings, space.space_id)
    second = queue.enqueue_finalize(settings, space.space_id)
    assert first.id == second.id
    workers.start()
    assert wait_for(catalog, space.space_id, finished).state is SpaceState.READY
    # A third "space ended" after the run: still one run, one set of rows.
    queue.enqueue_finalize(settings, space.space_id)
    q = queue.pipeline_queue(settings)
    assert q.count == 0
    # finalize, transcribe (the room, its levels included), mix, assemble, complete
    assert len(q.finished_job_registry.get_job_ids()) == 5
    assert len(catalog.search("wonderful book", limit=10)) == 1

    # A reprocess (a new run) replaces the outputs: with the same model, the same bytes.
    before = blobs.get(keys.transcript(space.space_id))
    run = queue.next_run(settings, space.space_id)
    queue.enqueue_finalize(settings, space.space_id, run=run)
    wait_for(catalog, space.space_id, lambda s: s.state is SpaceState.PROCESSING, timeout=60)
    assert wait_for(catalog, space.space_id, finished).state is SpaceState.READY
    assert blobs.get(keys.transcript(space.space_id)) == before
    assert len(catalog.search("wonderful book", limit=10)) == 1
    queue.connect(settings).delete(f"spaces:runs:{space.space_id}")


def test_reprocess_before_the_first_run_started_skips_the_first(
    settings: Settings, workers: Workers, two_speakers: SpeechSpace
) -> None:
    """A run's jobs still queued when a reprocess begins do nothing: only the newest run writes."""
    _, catalog = stores(settings)
    space = import_files(settings, dict(two_speakers))
    connection = queue.connect(settings)
    try:
        first = queue.enqueue_finalize(settings, space.space_id)
        run = queue.next_run(settings, space.space_id)
        queue.enqueue_finalize(settings, space.space_id, run=run)
        workers.start()
        assert wait_for(catalog, space.space_id, finished).state is SpaceState.READY
        first.refresh()
        assert first.get_status() == JobStatus.FINISHED
        # The first run's finalize enqueued nothing; the reprocess ran every stage.
        assert not Job.exists(queue.job_id(space.space_id, "mix", 0), connection=connection)
        for stage in ("mix", "assemble", "complete"):
            job = Job.fetch(queue.job_id(space.space_id, stage, run), connection=connection)
            assert job.get_status() == JobStatus.FINISHED, stage
        assert len(catalog.search("wonderful book", limit=10)) == 1
    finally:
        connection.delete(f"spaces:runs:{space.space_id}")


def test_a_levels_job_queued_by_the_previous_release_measures_its_own_track(
    settings: Settings, workers: Workers, two_speakers: SpeechSpace
) -> None:
    """A release before this one queued ``measure_levels(space_id, track_id)``, a job a track: one
    still queued at an upgrade measures its track, as it did, and its run goes on."""
    blobs, catalog = stores(settings)
    space = import_files(settings, dict(two_speakers))
    tracks = {speaker: t for t, speaker in read_manifest(blobs, space.space_id).tracks}
    queue.pipeline_queue(settings).enqueue("workers.levels.measure_levels", space.space_id, tracks["bob"])
    workers.start()
    wait_for(catalog, space.space_id, lambda s: s.progress.get("levels:bob") == 1.0, timeout=60)
    bob = Levels.from_dict(json.loads(blobs.get(keys.levels(space.space_id, tracks["bob"]))))
    said = next(u for u in UTTERANCES if u.speaker == "bob")
    assert bob.loudness(said.start + 0.5, said.start + 3.0) > -40  # his voice
    assert bob.loudness(1.0, 5.0) < -60  # alice speaking: nothing on his microphone
    with pytest.raises(NotFound):
        blobs.get(keys.levels(space.space_id, tracks["alice"]))


def test_damaged_and_silent_tracks_are_reported_not_fatal(
    settings: Settings, workers: Workers, two_speakers: SpeechSpace, tmp_path: Path
) -> None:
    silent = tmp_path / "carol.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", "12", str(silent)],
        check=True,
    )
    blobs, catalog = stores(settings)
    space = import_files(settings, {**two_speakers, "carol": silent})
    # Damage the middle of alice's second segment, as a bad disk would.
    segment = keys.segment(space.space_id, "00-alice", 1)
    data = bytearray(blobs.get(segment))
    data[len(data) // 3 : len(data) // 3 + 400] = b"\x00" * 400
    blobs.put(segment, bytes(data))
    workers.start()
    queue.enqueue_finalize(settings, space.space_id)
    done = wait_for(catalog, space.space_id, finished)
    assert done.state is SpaceState.READY, done.error
    transcript = Transcript.from_dict(json.loads(blobs.get(keys.transcript(space.space_id))))
    assert not [w for w in transcript.words if w.speaker == "carol"]
    said = " ".join(w.text for w in transcript.words if w.speaker == "bob")
    assert "schedule" in said
    assert any(w.speaker == "alice" and w.text.lower().startswith("river") for w in transcript.words)
