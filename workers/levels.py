"""Every track's loudness over time, as stored: read here, measured by the room's transcription.

The levels tell who speaks when: the room's transcription gives each word
to the speaker whose track is loudest while it is said (another speaker's
bleed on a microphone is always quieter), finds where two speak at once,
and ``assemble`` uses the same levels to remove whatever bleed got through.
``transcribe_room`` measures them as it reads the tracks; the job here is
the stage that measured them before it, for the jobs earlier releases queued.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import closing

import numpy as np
from faster_whisper import WhisperModel

from spaces import keys
from spaces.blobstore import BlobStore
from spaces.exceptions import NotFound
from spaces.languages import AUTO
from transcribe.language import Probabilities, detect, speaks_language
from transcribe.levels import Levels, levels
from transcribe.read_ahead import read_ahead
from workers.environment import Environment, environment
from workers.stage import Progress, stage
from workers.tracks import whole_track


@stage
def measure_levels(space_id: str, track_id: str | None = None) -> None:
    """Write every track's ``words/{track_id}.levels.json`` (and ``.language.json`` when the language is ``auto``).

    The pipeline's first stage in the releases before the room job read the
    tracks itself (``workers.transcribe_room``, which measures them as it
    sums the mix): a job an earlier release queued still does its part after
    an upgrade, and the room job queued behind it runs as it does now.
    ``track_id``: that track's only, as the jobs of the release before that
    queued (a job a track).
    """
    env = environment()
    ids = [t for t, _ in env.manifest(space_id).tracks] if track_id is None else [track_id]
    tracks = [env.track(space_id, t) for t in ids]
    bars = [Progress(env.catalog, space_id, f"levels:{track.speaker}") for track in tracks]
    for bar in bars:
        bar(0.0)
    model = (lambda: _detection_model(env)) if env.language(space_id) == AUTO else None
    sources = [whole_track(env, space_id, track, []) for track in tracks]
    with closing(room_levels(sources, model)) as measured:
        for i, track_levels, evidence in measured:
            track = tracks[i]
            env.write_json(keys.levels(space_id, track.track_id), track_levels.to_dict())
            if evidence is not None:
                probabilities, seconds = evidence
                env.write_json(
                    keys.language(space_id, track.track_id), {"probabilities": probabilities, "seconds": seconds}
                )
            bars[i](1.0)


def room_levels(
    tracks: Sequence[Iterable[tuple[float, np.ndarray]]], model: Callable[[], WhisperModel] | None
) -> Generator[tuple[int, Levels, tuple[Probabilities, float] | None], None, None]:
    """Each track's levels and, given ``model``, its speaker's language evidence (:func:`detect`), in order.

    ``tracks``: each a single ``(room time of its first sample, int16
    samples)``, read when its reader takes it, two at once (memory: two
    tracks' samples, and one's float copy while its language is detected).
    ``model`` is called only for a track with audio; an English-only model
    gives no evidence.
    """
    with closing(read_ahead(tracks, readers=2, ahead=1)) as read:
        for i, (start, audio) in read:
            evidence = None
            if model is not None and audio.size and speaks_language(detector := model()):
                # As int16 until here: half the memory of float32, which only detection needs.
                evidence = detect(detector, np.multiply(audio, 1 / 32768, dtype=np.float32))
            yield i, levels(audio, offset=start), evidence
            # Before the next track is taken: else three tracks are held while it waits on a slow read.
            del audio


def _detection_model(env: Environment) -> WhisperModel:
    """The model language detection runs on: one pass on the threads of the room job's passes together.

    The levels are the one stage of the space running, as the room's
    transcription is after them; a job per track had a worker's share each.
    """
    # Imported here: the room job reads the levels this module writes.
    from workers.transcribe_room import room_passes, room_threads

    return env.model(threads=room_threads(env.settings.model_threads, room_passes(env.settings.worker_count)))


def await_levels(blobs: BlobStore, space_id: str, track_ids: Sequence[str], *, wait: float, poll: float = 0.2) -> bool:
    """Whether every track's levels are stored, waiting up to ``wait`` seconds for them (looking every ``poll``)."""
    deadline = time.monotonic() + wait
    stored = [keys.levels(space_id, t) for t in track_ids]
    while not (found := all(blobs.exists(key) for key in stored)) and time.monotonic() < deadline:
        time.sleep(poll)
    return found


def read_levels(env: Environment, space_id: str, track_id: str) -> Levels | None:
    """A track's levels; None if they were never measured (a space processed before this stage)."""
    try:
        return Levels.from_dict(env.read_json(keys.levels(space_id, track_id)))
    except NotFound:
        return None
