"""Peak memory of the jobs that read whole tracks, on a space of two long tracks: the room job's read
(``transcribe_room`` before its model loads: every track's levels, the mix and the tracks on disk),
that read and then the VAD's pass over the mix and over a track from their files (what the room pass
and language detection read before Whisper hears anything), ``mix``, and ``measure_levels`` (the levels
job earlier releases queued).

    .venv/bin/python -m bench.track_memory [--hours 3]

Makes a track of speech-like bursts (a tone, four seconds on, three off)
with ffmpeg, imports it for two speakers as ``spaces import`` does (Opus segments of 10 s),
and runs each job in a fresh process of its own, as an rq work-horse runs
it, printing the process's peak RSS and that of any child it started (an
encoder). The space's language is set, so no Whisper model is loaded: the
figures are the audio's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.importer import TrackFile, import_space
from spaces.settings import Settings
from tests.support.services import settings_env

#: Run in the child: the job, then its own peak and its children's, in MB.
_JOB = """
import resource, sys, tempfile
from pathlib import Path
from workers.environment import environment
from workers.levels import measure_levels
from workers.mix import mix
from workers.transcribe_room import read_room
from transcribe.vad import speech_probabilities
space_id, job = sys.argv[1:]
if job.startswith("room read"):
    env = environment()
    tracks = {t: env.track(space_id, t) for t, _ in env.manifest(space_id).tracks}
    with tempfile.TemporaryDirectory() as tmp:
        audio = read_room(env, space_id, tracks, {t: [] for t in tracks}, Path(tmp))
        if job.endswith("VAD"):
            speech_probabilities(audio.mix)
            speech_probabilities(audio.track(0)[1], near_loudest=35.0)
else:
    measure_levels(space_id) if job == "measure_levels" else mix(space_id)
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{own:.0f} {children:.0f}")
"""


def synthesize(path: Path, hours: float) -> None:
    seconds = round(hours * 3600)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=48000:duration={seconds}",
         "-af", "volume='if(lt(mod(t,7),4),0.3,0)':eval=frame", "-ac", "1",
         "-c:a", "libopus", "-b:a", "24k", str(path)],
        check=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--hours", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-track-memory-") as tmp:
        work = Path(tmp)
        settings = Settings(data_dir=work / "data", queue_name=f"bench-{uuid.uuid4().hex[:8]}")
        source = work / "alice.ogg"
        synthesize(source, args.hours)
        catalog = open_catalog(settings)
        catalog.create_schema()
        space = import_space(
            open_blob_store(settings),
            catalog,
            [TrackFile("alice", source), TrackFile("bob", source)],
            title="bench",
            language="en",
        )
        print(f"two tracks: {args.hours:g} h each, load average {os.getloadavg()[0]:.1f}")
        print(f"{'job':<16}{'peak RSS MB':>12}{'children MB':>12}")
        for job in ("room read", "room read, VAD", "mix", "measure_levels"):
            out = subprocess.run(
                [sys.executable, "-c", _JOB, space.space_id, job],
                env=settings_env(settings),
                capture_output=True,
                text=True,
                check=True,
            )
            own, children = out.stdout.split()[-2:]
            print(f"{job:<16}{own:>12}{children:>12}")


if __name__ == "__main__":
    main()
