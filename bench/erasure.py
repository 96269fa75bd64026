"""Time to erase one speaker from a long space, split by stage.

    .venv/bin/python -m bench.erasure [--minutes 60] [--speakers 4]

Builds a processed space without transcribing it: one track per speaker
(pink noise in turns, speaker i in the i-th quarter of every minute,
encoded and imported as ``spaces import`` does), a transcript with a word
every 0.4 s of each turn, captions, search rows, per-track words. Then runs
the erasure's stages in this process, in order, on the embedded backends
(local directory, SQLite), and prints each stage's wall time. Erasure never
transcribes: it filters what was recognized and remixes, so the remix bounds it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import ffmpeg
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.importer import TrackFile, import_space
from spaces.models import SpaceState, Transcript, Turn, Word
from spaces.settings import Settings

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank"]
TURN_SECONDS = 12.0


def speaker_file(out: Path, index: int, speakers: int, minutes: float) -> Path:
    """Pink noise while the speaker has the floor (their share of every minute), silence otherwise."""
    share = 60.0 / speakers
    start = index * share
    path = out / f"{NAMES[index]}.ogg"
    gate = f"if(between(mod(t\\,60)\\,{start:.1f}\\,{start + TURN_SECONDS:.1f})\\,1\\,0)"
    ffmpeg(
        "-f", "lavfi", "-i", f"anoisesrc=d={minutes * 60:.0f}:c=pink:a=0.2:r=48000",
        "-af", f"volume='{gate}':eval=frame", "-ac", "1", "-c:a", "libopus", "-b:a", "32k", str(path),
    )  # fmt: skip
    return path


def turns_of(speakers: int, minutes: float) -> list[Turn]:
    turns = []
    share = 60.0 / speakers
    n = 0
    for minute in range(int(minutes)):
        for i in range(speakers):
            start = minute * 60 + i * share
            words = []
            t = start
            while t + 0.35 < start + TURN_SECONDS:
                words.append(Word(round(t, 3), round(t + 0.3, 3), f"word{n}", NAMES[i]))
                t += 0.4
                n += 1
            turns.append(Turn(NAMES[i], tuple(words)))
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--erase", default="bob")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-erasure-") as tmp:
        work = Path(tmp)
        os.environ.update({"SPACES_DATA_DIR": str(work / "data"), "SPACES_QUEUE_NAME": f"bench-{uuid.uuid4().hex[:8]}"})
        settings = Settings.from_env()
        blobs = open_blob_store(settings)
        catalog = open_catalog(settings)
        catalog.create_schema()

        t0 = time.perf_counter()
        files = [speaker_file(work, i, args.speakers, args.minutes) for i in range(args.speakers)]
        space = import_space(blobs, catalog, [TrackFile(NAMES[i], f) for i, f in enumerate(files)], title="bench")
        sid = space.space_id
        turns = turns_of(args.speakers, args.minutes)
        transcript = Transcript(sid, args.minutes * 60, tuple(NAMES[: args.speakers]), tuple(turns))
        blobs.put(keys.transcript(sid), json.dumps(transcript.to_dict()).encode())
        manifest = json.loads(blobs.get(keys.manifest(sid)))
        for track in manifest["tracks"]:
            mine = [w.to_dict() for t in turns if t.speaker == track["speaker"] for w in t.words]
            blobs.put(keys.words(sid, track["track_id"]), json.dumps({"words": mine}).encode())
            blobs.put(keys.context_clips(sid, track["track_id"]), b"")
        catalog.replace_turns(sid, turns)
        catalog.set_state(sid, SpaceState.READY)
        catalog.request_erasure(sid, args.erase, now=time.time())
        built = time.perf_counter() - t0

        from workers import erasure, mix

        stages: list[tuple[str, float]] = []
        for name, run in (
            ("erase_words (transcript, captions, search, words)", lambda: erasure.erase_words(sid, args.erase)),
            ("mix (remix of the other tracks)", lambda: mix.mix(sid)),
            ("erase_audio (track objects)", lambda: erasure.erase_audio(sid, args.erase)),
            ("erase_done", lambda: erasure.erase_done(sid, args.erase)),
        ):
            start = time.perf_counter()
            run()
            stages.append((name, time.perf_counter() - start))
        total = sum(s for _, s in stages)
        left = Transcript.from_dict(json.loads(blobs.get(keys.transcript(sid))))
        assert not [w for w in left.words if w.speaker == args.erase]

    load_after = os.getloadavg()
    print(
        f"erasing {args.erase} from a {args.minutes:.0f}-minute, {args.speakers}-speaker space "
        f"({len(turns)} turns, {sum(len(t.words) for t in turns)} words)"
    )
    print(f"(space built and imported in {built:.1f} s; not part of the erasure)")
    print(f"{'stage':<52} {'seconds':>8} {'share':>6}")
    for name, seconds in stages:
        print(f"{name:<52} {seconds:8.1f} {seconds / total * 100:5.1f}%")
    print(f"{'total':<52} {total:8.1f}   ({total / (args.minutes * 60):.3f}x the space's length)")
    print(
        f"CPUs {os.cpu_count()}, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        "(other processes share this machine: figures are upper bounds)"
    )


if __name__ == "__main__":
    main()
