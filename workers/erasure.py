"""Jobs: erase one speaker from an ended space.

``DELETE /spaces/{id}/speakers/{speaker}`` (and ``spaces erase``) records
the erasure in the catalog and enqueues :func:`erase_speaker`, which fans
out four stages, each idempotent, each a job of its own (ids derived from
the space, the speaker and the run, so asking twice is one erasure):

1. ``erase_words``: the speaker's tracks move from ``tracks`` to ``erased``
   in the manifest; their turns leave transcript.json (each becomes a gap
   marked ``erased``, same times), the captions are rebuilt from what is
   left, the search rows replaced, their per-track words, levels and clips
   deleted, their live captions dropped from the Redis stream. Nothing is
   re-recognized: the other speakers' words and times stay as they were,
   to the millisecond.
2. ``mix``: the replay remixed from the tracks left (the pipeline's mix).
3. ``erase_audio``: the speaker's track objects deleted (every version, on S3),
   and the live HLS (a mix of every voice) with them.
4. ``erase_done``: the catalog shows the speaker as erased.

A worker killed mid-way leaves its job abandoned; rq retries it and the
stage starts again from what is stored, which converges to the same state.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from redis import Redis

from spaces import hls, keys, layout
from spaces.captions import build_cues, to_srt, to_webvtt
from spaces.languages import main_language
from spaces.live_captions import stream_key
from spaces.models import Gap, Manifest, Transcript, Turn
from spaces.queue import current_run, enqueue_once, job_id, pipeline_queue, speaker_slug
from workers.environment import Environment, environment

log = logging.getLogger(__name__)

ERASED = "erased"


def erase_speaker(space_id: str, speaker: str) -> list[str]:
    """Enqueue the erasure's stages; returns their job ids."""
    env = environment()
    queue = pipeline_queue(env.settings)
    # The mix is the pipeline's own stage, which skips jobs of superseded runs:
    # these jobs carry the space's current run.
    run = current_run(queue.connection, space_id)
    slug = speaker_slug(speaker)
    previous: Any = None
    ids = []
    for name, func in (
        ("words", "workers.erasure.erase_words"),
        ("mix", "workers.mix.mix"),
        ("audio", "workers.erasure.erase_audio"),
        ("done", "workers.erasure.erase_done"),
    ):
        args = () if name == "mix" else (speaker,)
        previous = enqueue_once(
            queue,
            func,
            space_id,
            *args,
            job_id=job_id(space_id, f"erase-{slug}-{name}", run),
            run=run,
            retries=env.settings.job_retries,
            depends_on=[previous] if previous is not None else None,
        )
        ids.append(str(previous.id))
    return ids


def erase_words(space_id: str, speaker: str) -> int:
    """Stage 1; returns how many of the speaker's turns left the transcript."""
    env = environment()
    manifest = _erase_from_manifest(env, env.manifest(space_id), speaker)
    transcript = Transcript.from_dict(env.read_json(keys.transcript(space_id)))
    kept = tuple(t for t in transcript.turns if t.speaker != speaker)
    gone = [t for t in transcript.turns if t.speaker == speaker]
    gaps = tuple(sorted((*transcript.gaps, *(_gap(t) for t in gone)), key=lambda g: (g.start, g.speaker)))
    erased = replace(transcript, turns=kept, gaps=gaps)
    env.write_json(keys.transcript(space_id), erased.to_dict())
    cues = build_cues(list(kept))
    vtt = to_webvtt(cues, language=main_language(list(kept)))
    env.blobs.put(keys.captions(space_id, "vtt"), vtt.encode(), content_type="text/vtt")
    env.blobs.put(keys.captions(space_id, "srt"), to_srt(cues).encode(), content_type="application/x-subrip")
    env.catalog.replace_turns(space_id, kept)
    for track_id, who in manifest.erased:
        if who == speaker:
            for key in (
                keys.words(space_id, track_id),
                keys.levels(space_id, track_id),
                keys.context_clips(space_id, track_id),
            ):
                env.blobs.delete(key)
    _drop_live_captions(env, space_id, speaker)
    env.catalog.set_progress(space_id, f"erase:{speaker}", 0.25)
    log.info(
        "space %s: %s's %d turns erased from the transcript", space_id, speaker, len(gone), extra={"space_id": space_id}
    )
    return len(gone)


def erase_audio(space_id: str, speaker: str) -> int:
    """Stage 3 (after the remix): delete the speaker's track objects; returns how many there were."""
    env = environment()
    manifest = env.manifest(space_id)
    removed = 0
    for track_id, who in manifest.erased:
        if who == speaker:
            prefix = keys.track_prefix(space_id, track_id)
            removed += len(list(env.blobs.list(prefix)))
            env.blobs.delete_prefix(prefix)
    # The live HLS (the instant replay) is a mix of every voice and carries every
    # live caption: it goes whole; the remixed replay is what plays from now on.
    removed += len(list(env.blobs.list(hls.prefix(space_id))))
    env.blobs.delete_prefix(hls.prefix(space_id))
    env.catalog.set_progress(space_id, f"erase:{speaker}", 0.9)
    return removed


def erase_done(space_id: str, speaker: str) -> None:
    """Stage 4: the catalog shows the speaker as erased."""
    env = environment()
    env.catalog.finish_erasure(space_id, speaker)
    env.catalog.set_progress(space_id, f"erase:{speaker}", 1.0)
    log.info("space %s: %s erased", space_id, speaker, extra={"space_id": space_id})


def _erase_from_manifest(env: Environment, manifest: Manifest, speaker: str) -> Manifest:
    """Move the speaker's tracks to ``erased`` (written once; a rerun finds them moved)."""
    theirs = tuple((t, s) for t, s in manifest.tracks if s == speaker)
    if not theirs:
        return manifest
    changed = replace(
        manifest,
        tracks=tuple((t, s) for t, s in manifest.tracks if s != speaker),
        erased=(*manifest.erased, *theirs),
    )
    layout.put_manifest(env.blobs, changed)
    return changed


def _gap(turn: Turn) -> Gap:
    return Gap(speaker=turn.speaker, start=turn.start, end=turn.end, reason=ERASED)


def _drop_live_captions(env: Environment, space_id: str, speaker: str) -> None:
    """Remove the speaker's captions from the space's live stream (kept a while after it ends)."""
    redis = Redis.from_url(env.settings.redis_url)
    key = stream_key(env.settings.queue_name, space_id)
    try:
        entries: Any = redis.xrange(key)
        doomed = [entry_id for entry_id, fields in entries or () if _caption_speaker(fields) == speaker]
        if doomed:
            redis.xdel(key, *doomed)
    finally:
        redis.close()


def _caption_speaker(fields: Any) -> str | None:
    try:
        return str(json.loads(fields[b"caption"])["speaker"])
    except (KeyError, ValueError, TypeError):
        return None
