"""Time to import and process a two-speaker space, split by stage.

    .venv/bin/python -m bench.pipeline [--minutes 2] [--workers 1]

Synthesizes the space (espeak-ng, cached), imports it with the same code as
``spaces import``, runs real ``spaces worker`` processes on a queue of its
own, and prints each rq job's run time and the wall time end to end.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rq.job import Job

from spaces import queue
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.importer import TrackFile, import_space
from spaces.models import SpaceState
from spaces.settings import Settings
from tests.speech import SENTENCES, VOICES, Utterance, build_space
from tests.support.services import settings_env


def conversation(minutes: float, seed: int = 7) -> list[Utterance]:
    """Alternating turns of one or two sentences with short pauses."""
    rng = random.Random(seed)
    utterances, t, speaker = [], 1.0, "alice"
    while t < minutes * 60 - 8:
        text = " ".join(rng.sample(SENTENCES, rng.choice([1, 2])))
        utterances.append(Utterance(speaker, t, text))
        t += 0.42 * len(text.split()) + rng.uniform(0.6, 2.0)
        speaker = "bob" if speaker == "alice" else "alice"
    return utterances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        settings = Settings(data_dir=work / "data", queue_name=f"bench-{uuid.uuid4().hex[:8]}")
        env = settings_env(settings)
        space = build_space(
            conversation(args.minutes), {"alice": VOICES[0], "bob": VOICES[1]}, duration=args.minutes * 60, out_dir=work
        )
        catalog = open_catalog(settings)
        catalog.create_schema()
        workers = [
            subprocess.Popen([sys.executable, "-m", "spaces.cli", "worker"], env=env, stderr=subprocess.DEVNULL)
            for _ in range(args.workers)
        ]
        try:
            t0 = time.monotonic()
            imported = import_space(
                open_blob_store(settings), catalog, [TrackFile(s, p) for s, p in space.items()], title="bench"
            )
            t_import = time.monotonic() - t0
            queue.enqueue_finalize(settings, imported.space_id)
            while catalog.get_space(imported.space_id).state not in (SpaceState.READY, SpaceState.FAILED):
                time.sleep(0.2)
            t_total = time.monotonic() - t0
            state = catalog.get_space(imported.space_id).state
        finally:
            for w in workers:
                w.terminate()
                w.wait()
        connection = queue.connect(settings)
        q = queue.pipeline_queue(settings, connection)
        rows = []
        for job_id in q.finished_job_registry.get_job_ids():
            job = Job.fetch(job_id, connection=connection)
            if job.started_at and job.ended_at:
                rows.append((job_id.split("--", 1)[1], (job.ended_at - job.started_at).total_seconds()))
        print(
            f"\nspace: {args.minutes:.1f} min, 2 speakers, {args.workers} worker(s), "
            f"{os.cpu_count()} cores; final state {state}"
        )
        print(f"{'stage':<28}{'seconds':>10}")
        print(f"{'import (encode + store)':<28}{t_import:>10.2f}")
        for stage, seconds in sorted(rows):
            print(f"{stage:<28}{seconds:>10.2f}")
        print(f"{'wall time, end to end':<28}{t_total:>10.2f}")
        print(f"{'x real time':<28}{t_total / (args.minutes * 60):>10.3f}")


if __name__ == "__main__":
    main()
