"""Job: a track's loudness over time, measured before any track is transcribed.

The levels tell who speaks when: the room's transcription gives each word
to the speaker whose track is loudest while it is said (another speaker's
bleed on a microphone is always quieter), finds where two speak at once,
and ``assemble`` uses the same levels to remove whatever bleed got through.
"""

from __future__ import annotations

import numpy as np

from spaces import keys
from spaces.exceptions import NotFound
from spaces.languages import AUTO
from transcribe.language import detect, speaks_language
from transcribe.levels import Levels, levels
from workers.environment import Environment, environment
from workers.stage import Progress, stage
from workers.tracks import load_track_audio


@stage
def measure_levels(space_id: str, track_id: str) -> None:
    """Write ``words/{track_id}.levels.json`` (and ``.language.json`` when the language is ``auto``).

    Language detection is done here, with the track already decoded, so that
    every track's evidence is at hand when any track is transcribed.
    """
    env = environment()
    track = env.track(space_id, track_id)
    progress = Progress(env.catalog, space_id, f"levels:{track.speaker}")
    progress(0.0)
    # As int16: half the memory of float32, which only language detection needs.
    start, audio, _ = load_track_audio(env, space_id, track, dtype=np.int16)
    env.write_json(keys.levels(space_id, track_id), levels(audio, offset=start).to_dict())
    if env.language(space_id) == AUTO and audio.size and speaks_language(env.model()):
        probabilities, seconds = detect(env.model(), np.multiply(audio, 1 / 32768, dtype=np.float32))
        env.write_json(keys.language(space_id, track_id), {"probabilities": probabilities, "seconds": seconds})
    progress(1.0)


def read_levels(env: Environment, space_id: str, track_id: str) -> Levels | None:
    """A track's levels; None if they were never measured (a space processed before this stage)."""
    try:
        return Levels.from_dict(env.read_json(keys.levels(space_id, track_id)))
    except NotFound:
        return None
