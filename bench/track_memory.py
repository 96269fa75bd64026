"""Peak memory of the jobs that read whole tracks, on a space of two long tracks: the room job's read
(``transcribe_room`` before its model loads: every track's levels, the mix and the tracks on disk),
that read and then the VAD's pass over the mix and over a track from their files (what the room pass
and language detection read before Whisper hears anything), ``mix``, and ``measure_levels`` (the levels
job earlier releases queued).

    .venv/bin/python -m bench.track_memory [--hours 3] [--speech]

Makes a track of speech-like bursts (a tone, four seconds on, three off)
with ffmpeg, imports it for two speakers as ``spaces import`` does (Opus segments of 10 s),
and runs each job in a fresh process of its own, as an rq work-horse runs
it, printing the process's peak RSS and that of any child it started (an
encoder). The space's language is set, so no Whisper model is loaded: the
figures are the audio's.

``--speech``: the tracks are speech instead, ``bench.transcripts``' 10-minute
four-speaker space (espeak-ng voices taking turns, two overlaps, a bleed)
repeated to ``--hours``, and the whole room job runs too (``room job``:
``workers.transcribe_room``, the default Whisper model and all), printing
the words it stored.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import ffmpeg
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.importer import TrackFile, import_space
from spaces.settings import Settings
from tests.evalspace import build, plan_space
from tests.support.services import settings_env

#: Run in the child: the job, then its own peak and its children's, in MB.
_JOB = """
import resource, sys, tempfile
from pathlib import Path
from workers.environment import environment
from workers.levels import measure_levels
from workers.mix import mix
from workers.transcribe_room import read_room, transcribe_room
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
elif job == "room job":
    print("stored", transcribe_room(space_id), "words")
else:
    measure_levels(space_id) if job == "measure_levels" else mix(space_id)
# VmHWM, not ru_maxrss: Linux carries the spawning process's peak over into
# its child's ru_maxrss at exec (the speech space's bench process: 348 MB).
own = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{own:.0f} {children:.0f}")
"""


def synthesize(path: Path, hours: float) -> None:
    seconds = round(hours * 3600)
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=48000:duration={seconds}",
        "-af", "volume='if(lt(mod(t,7),4),0.3,0)':eval=frame", "-ac", "1",
        "-c:a", "libopus", "-b:a", "24k", str(path),
    )  # fmt: skip


SPACE_SECONDS = 600.0
"""The length of the bench's espeak space, repeated."""


def speech(work: Path, hours: float) -> list[TrackFile]:
    """The bench's espeak space, each speaker's track from the room's start (silence before a late
    joiner) repeated with the space's period to ``hours``, so that the speakers still take turns."""
    space = build(plan_space(SPACE_SECONDS), work / "space", suffix=".wav")
    tracks = []
    for speaker in space:
        once, path = work / f"{speaker}-once.wav", work / f"{speaker}.ogg"
        silence = f"adelay={round(space.starts[speaker] * 1000)},apad=whole_dur={SPACE_SECONDS}"
        ffmpeg("-i", str(space[speaker]), "-af", silence, str(once))
        ffmpeg(
            "-stream_loop", "-1", "-i", str(once),
            "-t", str(round(hours * 3600)), "-c:a", "libopus", "-b:a", "32k", str(path),
        )  # fmt: skip
        tracks.append(TrackFile(speaker, path))
    return tracks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--speech", action="store_true", help="speech tracks, and the whole room job")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-track-memory-") as tmp:
        work = Path(tmp)
        settings = Settings(data_dir=work / "data", queue_name=f"bench-{uuid.uuid4().hex[:8]}")
        if args.speech:
            tracks = speech(work, args.hours)
        else:
            source = work / "alice.ogg"
            synthesize(source, args.hours)
            tracks = [TrackFile("alice", source), TrackFile("bob", source)]
        catalog = open_catalog(settings)
        catalog.create_schema()
        space = import_space(open_blob_store(settings), catalog, tracks, title="bench", language="en")
        print(f"{len(tracks)} tracks: {args.hours:g} h each, load average {os.getloadavg()[0]:.1f}")
        print(f"{'job':<16}{'peak RSS MB':>12}{'children MB':>12}{'seconds':>9}")
        # The legacy levels job is left out of a speech room: it holds every track whole (0.5 GB a track-hour).
        jobs = ("room read", "room read, VAD", "mix") + (("room job",) if args.speech else ("measure_levels",))
        for job in jobs:
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", _JOB, space.space_id, job],
                env=settings_env(settings),
                capture_output=True,
                text=True,
                check=True,
            )
            lines = out.stdout.splitlines()
            own, children = lines[-1].split()
            said = "".join(f"  ({line})" for line in lines if line.startswith("stored "))
            print(f"{job:<16}{own:>12}{children:>12}{time.perf_counter() - started:>9.0f}{said}")


if __name__ == "__main__":
    main()
