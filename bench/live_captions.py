"""Live captions on loopback: latency, accuracy and the agent's CPU (issue 10's targets).

    .venv/bin/python -m bench.live_captions [--turns 6]
    SPACES_LIVE_MODEL=base .venv/bin/python -m bench.live_captions   # the agent on base
    SPACES_LIVE_FINAL_MODEL=tiny.en .venv/bin/python -m bench.live_captions   # finals on tiny.en too

A live space with two speakers taking turns (espeak-ng sentences with known
word times), the SFU as a subprocess, the room agent in a ``spaces worker
--live`` subprocess, and a listener collecting caption events with their
arrival times. Room clock to wall clock: the listener's welcome carries the
room time at join, so wall = clock0 + room time.

Measured:
- latency from a word's end to the first caption event showing it (interim),
  and from an utterance's last word to its final caption (p50, p95);
- WER of the live finals and of the offline transcription of the same
  speech (``transcribe.transcribe.transcribe``) by the agent's model and by
  the pipeline's (``SPACES_LIVE_MODEL``, ``WHISPER_MODEL``), and their ratios;
- the agent's CPU (its worker's process tree) while one speaker talks, and
  in a silent stretch;
- time from a final caption to the catalog's search (what ``/search`` runs)
  finding its longest word.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import av
import numpy as np

from bench.common import percentile, table, tree_cpu
from ingest.client import PcmTrack, SpaceClient
from spaces.catalog import open_catalog
from spaces.settings import Settings
from spaces.tokens import Role
from tests.speech import SENTENCES, VOICES, synthesize, word_error_rate
from tests.support.services import REDIS_URL, free_port
from tests.support.sfu import make_space, rtc_url, sfu_process, speech48k, token
from tests.support.workers import env_of
from transcribe.model import load_model, model_label
from transcribe.transcribe import transcribe

RATE = 48000
GAP = 1.2
"""Seconds between one speaker's last word and the other's first."""
SILENCE = 6.0
"""The silent stretch at the end, for the agent's CPU when nobody talks."""


@dataclass
class Said:
    speaker: str
    text: str
    start: float
    """Seconds into the speaker's track."""
    words: list[tuple[float, float, str]]
    """(start, end, text), seconds into the speaker's track."""

    @property
    def end(self) -> float:
        return self.words[-1][1]


@dataclass
class Script:
    tracks: dict[str, np.ndarray]
    said: list[Said] = field(default_factory=list)


def script(turns: int) -> Script:
    speakers = {"alice": VOICES[0], "bob": VOICES[1]}
    t = 1.0
    said: list[Said] = []
    pieces: dict[str, list[tuple[float, np.ndarray]]] = {s: [] for s in speakers}
    for i in range(turns):
        speaker = list(speakers)[i % 2]
        text = SENTENCES[i % len(SENTENCES)]
        speech = synthesize(text, speakers[speaker])
        audio = speech48k(text, speakers[speaker])
        said.append(Said(speaker, text, t, [(t + a, t + b, w) for a, b, w in speech.words]))
        pieces[speaker].append((t, audio))
        t += len(audio) / RATE + GAP
    length = int((t + SILENCE) * RATE)
    tracks = {}
    for speaker, parts in pieces.items():
        track = np.zeros(length, np.int16)
        for at, audio in parts:
            track[int(at * RATE) : int(at * RATE) + len(audio)] = audio
        tracks[speaker] = track
    return Script(tracks, said)


def to16k(samples: np.ndarray) -> np.ndarray:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = RATE
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
    out = [f.to_ndarray().reshape(-1) for f in (*resampler.resample(frame), *resampler.resample(None))]
    return np.concatenate(out).astype(np.float32)


async def wait_for_agent(settings: Settings, space_id: str, url: str) -> SpaceClient:
    """A warm-up speaker talks until the agent's first final caption: the agent is in and warm.

    It stays in the room, silent, so the measured speakers get slots of their own.
    """
    speech = speech48k(SENTENCES[3], VOICES[2], tail=1.5)
    warm = SpaceClient(
        url, token(settings, space_id, "warmup", Role.SPEAKER), track=PcmTrack(np.tile(speech, 6)), decode=False
    )
    await warm.connect()
    await warm.wait_for(lambda c: any(m.get("type") == "caption" and m["final"] for m in c.messages), timeout=180)
    return warm


async def run(settings: Settings, turns: int, log_dir: Path) -> dict[str, Any]:
    plan = script(turns)
    space_id = make_space(settings, title="Live captions bench")
    url = rtc_url(settings, space_id)
    env = {**env_of(settings), "SPACES_SFU_PORT": str(settings.sfu_port), "SPACES_WORKERS": "1"}
    catalog = open_catalog(settings)
    with sfu_process(settings, log_dir / "sfu.log") as sfu:
        with (log_dir / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "spaces.cli", "worker", "--live"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            listener = SpaceClient(url, token(settings, space_id, "carol", Role.LISTENER), decode=False)
            await listener.connect()
            assert listener.welcome is not None
            clock0 = time.time() - float(listener.welcome["room_time"])
            warm = await wait_for_agent(settings, space_id, url)
            # The warm-up speaker's track runs out (then silence); the script starts after it.
            warm_track = warm.track
            assert isinstance(warm_track, PcmTrack) and warm_track.started_at is not None
            warm_done = warm_track.started_at + len(warm_track.samples) / RATE
            await warm.wait_for(lambda _: time.time() > warm_done, timeout=120)
            await asyncio.sleep(2.0)
            start_index = len(listener.timed_messages)
            tracks = {s: PcmTrack(a) for s, a in plan.tracks.items()}
            clients = {
                s: SpaceClient(
                    url,
                    token(settings, space_id, s, Role.HOST if s == "alice" else Role.SPEAKER),
                    track=t,
                    decode=False,
                )
                for s, t in tracks.items()
            }
            await asyncio.gather(*(c.connect() for c in clients.values()))
            # CPU per stretch: sampled at each utterance's bounds, as the script plays.
            cpu_marks: list[tuple[float, float]] = []
            search_delays: list[float] = []
            origin = min(t.started_at or time.time() for t in tracks.values())
            length = len(next(iter(plan.tracks.values()))) / RATE
            seen_finals = 0
            while time.time() < origin + length:
                cpu_marks.append((time.time(), tree_cpu(worker.pid)))
                finals = [
                    (at, m)
                    for at, m in listener.timed_messages[start_index:]
                    if m.get("type") == "caption" and m["final"]
                ]
                for at, m in finals[seen_finals:]:
                    word = max((w["text"].strip(".,!?").lower() for w in m["words"]), key=len, default="")
                    if word:
                        search_delays.append(await search_delay(catalog, space_id, word, at))
                seen_finals = len(finals)
                await asyncio.sleep(0.25)

            # Silence: once the agent has caught up (every final in, or 60 s), its CPU over a few seconds.
            def caught_up(c: SpaceClient) -> bool:
                done = [m for _, m in c.timed_messages[start_index:] if m.get("type") == "caption" and m["final"]]
                return len(done) >= len(plan.said)

            with contextlib.suppress(TimeoutError):
                await listener.wait_for(caught_up, timeout=60)
            quiet0 = (time.time(), tree_cpu(worker.pid))
            await asyncio.sleep(SILENCE)
            quiet1 = (time.time(), tree_cpu(worker.pid))
            events = [(at, m) for at, m in listener.timed_messages[start_index:] if m.get("type") == "caption"]
            # The room's end ends the agent's job; then its worker stops.
            await clients["alice"].send({"type": "end"})
            await listener.wait_for(lambda c: any(m.get("type") == "ended" for m in c.messages), timeout=30)
            for c in (*clients.values(), warm):
                await c.close()
            await listener.close()
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
            sfu.terminate()
    catalog.close()
    result = analyse(plan, tracks, clock0, events, cpu_marks, search_delays)
    result["silent"] = (quiet1[1] - quiet0[1]) / (quiet1[0] - quiet0[0])
    return result


async def search_delay(catalog: Any, space_id: str, word: str, caption_at: float) -> float:
    while True:
        hits = await asyncio.to_thread(catalog.search, word, limit=5, space_id=space_id)
        if hits:
            return time.time() - caption_at
        if time.time() - caption_at > 30:
            return float("inf")
        await asyncio.sleep(0.05)


def analyse(
    plan: Script,
    tracks: dict[str, PcmTrack],
    clock0: float,
    events: list[tuple[float, dict[str, Any]]],
    cpu_marks: list[tuple[float, float]],
    search_delays: list[float],
) -> dict[str, Any]:
    def wall(speaker: str, seconds: float) -> float:
        return (tracks[speaker].started_at or 0) + seconds

    def said_of(m: dict[str, Any]) -> Said | None:
        at = clock0 + m["start"]
        mine = [s for s in plan.said if s.speaker == m["speaker"]]
        near = [s for s in mine if wall(s.speaker, s.start) - 1.0 <= at <= wall(s.speaker, s.end) + 0.5]
        return near[0] if near else None

    interim: list[float] = []
    final: list[float] = []
    live_text: dict[str, list[str]] = {"alice": [], "bob": []}
    shown: dict[tuple[str, float], int] = {}
    for at, m in events:
        s = said_of(m)
        if s is None:
            continue
        key = (s.speaker, s.start)
        n = len(m["words"])
        # Each true word is shown by the first event with at least that many words.
        for i in range(shown.get(key, 0), min(n, len(s.words))):
            interim.append(at - wall(s.speaker, s.words[i][1]))
        shown[key] = max(shown.get(key, 0), n)
        if m["final"]:
            final.append(at - wall(s.speaker, s.end))
            live_text[m["speaker"]].append(m["text"])
    reference = {sp: " ".join(s.text for s in plan.said if s.speaker == sp) for sp in plan.tracks}

    def wer(texts: dict[str, str]) -> float:
        return sum(word_error_rate(reference[sp], texts[sp]) for sp in reference) / len(reference)

    said_by: dict[str, dict[str, str]] = {"said": reference}

    def offline_wer(name: str) -> float:
        model = load_model(name)
        texts = {}
        for speaker, samples in plan.tracks.items():
            words = transcribe(model, to16k(samples), speaker=speaker, offset=0.0)
            texts[speaker] = " ".join(w.text for w in words)
        said_by[f"offline {model_label(name)}"] = texts
        return wer(texts)

    said_by["live"] = {sp: " ".join(texts) for sp, texts in live_text.items()}
    live_wer = wer(said_by["live"])
    # Against the agent's own model (what streaming costs), and the pipeline's (what replaces the live text).
    live_model, pipeline_model = models()
    own = offline_wer(live_model)
    pipeline = own if model_label(pipeline_model) == model_label(live_model) else offline_wer(pipeline_model)

    def cpu_between(t0: float, t1: float) -> float:
        inside = [(t, c) for t, c in cpu_marks if t0 <= t <= t1]
        if len(inside) < 2:
            return float("nan")
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    talking = {
        sp: [cpu_between(wall(s.speaker, s.start), wall(s.speaker, s.end)) for s in plan.said if s.speaker == sp]
        for sp in plan.tracks
    }
    return {
        "interim": interim,
        "final": final,
        "live_wer": live_wer,
        "offline_wer": own,
        "pipeline_wer": pipeline,
        "talking": {sp: float(np.nanmean(v)) for sp, v in talking.items()},
        "search": search_delays,
        "utterances": len(plan.said),
        "texts": said_by,
        "finals": len(final),
    }


def models() -> tuple[str, str]:
    """The agent's interim model and the pipeline's, as the worker reads them (SPACES_LIVE_MODEL, WHISPER_MODEL)."""
    settings = live_settings()
    return settings.live_model_for("en"), settings.whisper_model


def live_settings() -> Settings:
    """The models' settings the worker (a subprocess inheriting this environment) reads."""
    names = ("WHISPER_MODEL", "SPACES_LIVE_MODEL", "SPACES_LIVE_FINAL_MODEL")
    return Settings.from_env({k: v for k, v in os.environ.items() if k in names})


def report(r: dict[str, Any]) -> None:
    def p(values: list[float], q: float) -> str:
        return f"{percentile(values, q):.2f} s" if values else "-"

    def ratio(offline: float) -> str:
        return f"{r['live_wer'] / offline:.2f}x" if offline else "offline 0"

    live_model, pipeline_model = (model_label(m) for m in models())
    final_model = model_label(live_settings().live_final_model_for("en"))
    rows = [
        ["interim latency p50 (word end -> first event showing it)", p(r["interim"], 50), "<= 1.0 s"],
        ["interim latency p95", p(r["interim"], 95), "<= 3 s"],
        ["final latency p50 (utterance end -> final)", p(r["final"], 50), "<= 1.5 s"],
        ["final latency p95", p(r["final"], 95), "<= 3 s"],
        ["finals / utterances", f"{r['finals']} / {r['utterances']}", "all"],
        ["live WER", f"{r['live_wer']:.3f}", ""],
        [f"offline WER, same speech, {live_model} (the agent's model)", f"{r['offline_wer']:.3f}", ""],
        [f"live / offline WER, {live_model}", ratio(r["offline_wer"]), ""],
        [f"offline WER, {pipeline_model} (the pipeline's model)", f"{r['pipeline_wer']:.3f}", ""],
        [f"live / offline WER, {pipeline_model} (the issue's target)", ratio(r["pipeline_wer"]), "<= 1.3x"],
        *[
            [f"agent CPU while {sp} talks", f"{cpu:.2f} core", "<= 0.5 core"]
            for sp, cpu in sorted(r["talking"].items())
        ],
        ["agent CPU in silence (after catching up)", f"{r['silent']:.3f} core", "~0"],
        ["final caption -> search finds it, p50", p(r["search"], 50), "<= 3 s"],
        ["final caption -> search finds it, max", f"{max(r['search']):.2f} s" if r["search"] else "-", "<= 3 s"],
    ]
    print(
        table(
            f"Live captions on loopback (2 speakers taking turns, agent in a live worker, interim model"
            f" {live_model}, final model {final_model}, pipeline {pipeline_model}; load average {r['load']})",
            ["figure", "measured", "target"],
            rows,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=6, help="utterances, alternating between the 2 speakers")
    parser.add_argument("--texts", action="store_true", help="print what was said, the live finals, the offline text")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="live-captions-bench-") as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            redis_url=REDIS_URL,
            queue_name=f"bench-{uuid.uuid4().hex[:12]}",
            job_retries=1,
        )
        settings = replace(settings, sfu_port=free_port(), sfu_empty_timeout=30, sfu_ice_addresses="127.0.0.1")
        log_dir = Path(tempfile.mkdtemp(prefix="live-captions-bench-logs-"))
        print(f"logs in {log_dir}")
        load0 = os.getloadavg()[0]
        result = asyncio.run(run(settings, args.turns, log_dir))
        # Other work on the machine slows the agent's passes: say how busy it was.
        result["load"] = f"{load0:.1f} -> {os.getloadavg()[0]:.1f}"
        report(result)
        if args.texts:
            for source, texts in result["texts"].items():
                for speaker, text in sorted(texts.items()):
                    print(f"{source:>16} {speaker}: {text}")


if __name__ == "__main__":
    main()
