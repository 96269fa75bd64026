"""The live captions' words without the network: designs of the final pass compared on the same speech.

    .venv/bin/python -m bench.live_wer --runs 4 --turns 16 [--design NAME ...]

The bench's script (2 voices taking turns, known text) goes through Opus
(at the bitrate the SFU asks browsers for, ``--kbps``) and back as the
agent hears it, then into one
:class:`~transcribe.streaming.StreamingTranscriber` per speaker sharing a
:class:`~transcribe.room_context.RoomContext`, fed in 20 ms chunks in room
order, single-threaded (as the agent's threads would, minus the wall
clock). What a design changes is the final pass, so its WER comes out as
the live bench's would, in a fraction of the time and on a busy machine:
latency is not measured here (``bench.live_captions`` does), and there
are no interim passes (finals do not depend on them), so the CPU figure is
the final passes' (and the VAD's) per second of speech. With
``--interims`` the interim passes run too, paced as the agent paces them
(by their CPU, not the wall clock): the CPU figure is then all the
agent's passes', the whole of its budget per talking speaker.

With ``--revise NAME`` (repeatable) revision passes settle the finals
(:mod:`transcribe.revision`): every reviser hears the same finals, each
pass run at the room time the reviser says it is due, and its row gives
the settled text's WER, the revision passes' CPU per second of speech and
how long after an utterance's last word its settled text comes (the room
time the pass was due, plus the pass's CPU seconds; the first settling of
an utterance).

WER is pooled: word errors over reference words, all runs together, beside
the offline pipeline's on the same tracks (``WHISPER_MODEL``, as the live
bench compares). Per run figures show the noise.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import av
import numpy as np

from bench.bitrate import kbps_argument, speaker_kbps
from bench.common import table
from bench.live_captions import RATE, Script, offline_texts, script, script_errors, warmup
from spaces.models import Caption
from transcribe.audio import SAMPLE_RATE
from transcribe.live_audio import OpusStream
from transcribe.model import DEFAULT_MODEL, load_model, model_label
from transcribe.revision import Reviser, RevisionOptions
from transcribe.room_context import Heard, RoomContext
from transcribe.streaming import StreamingOptions, StreamingTranscriber
from transcribe.transcribe import TranscribeOptions


@dataclass(frozen=True)
class Design:
    """One way of making the finals: the models, the room heard first, the final pass's beam, its threads."""

    interim: str
    """The interim passes' model (there are none here, but it is loaded as the agent loads it)."""
    final: str
    context: float = 0.0
    """``StreamingOptions.final_context``: seconds of the room's latest finals heard first."""
    beam: int = 5
    threads: int = 1
    """CPU threads a pass computes on: the agent's on a 2-core machine (its share of the CPUs, at least one a pass)."""


DESIGNS = {
    "tiny": Design("tiny.en", "tiny.en"),
    "tiny ctx8": Design("tiny.en", "tiny.en", 8.0),
    "tiny+base": Design("tiny.en", "base"),
    "tiny+base ctx8": Design("tiny.en", "base", 8.0),
    "tiny+base ctx8 beam2": Design("tiny.en", "base", 8.0, beam=2),
}


@dataclass(frozen=True)
class Revision:
    """One way of settling the finals: the model and :class:`~transcribe.revision.RevisionOptions`."""

    model: str
    options: RevisionOptions
    anytime: bool = False
    """Settle at ``pause`` seconds after the last final even while someone talks (a long turn)."""


#: The revision pass's decoding (``RevisionOptions().whisper``: a 20 s encoder window where the speech fits).
SETTLE = RevisionOptions().whisper

REVISIONS = {
    "base R15": Revision("base", RevisionOptions(every=15.0)),
    "base R15 before": Revision("base", RevisionOptions(every=15.0, context=28.0, whisper=TranscribeOptions())),
    "base R15 30s": Revision("base", RevisionOptions(every=15.0, whisper=replace(SETTLE, fit_encoder=False))),
    "base R15 fallback": Revision("base", RevisionOptions(every=15.0, whisper=replace(SETTLE, fallback=True))),
    "base R15 once": Revision("base", RevisionOptions(every=15.0, whisper=replace(SETTLE, second_looks=False))),
    "base R15 ctx5": Revision("base", RevisionOptions(every=15.0, context=5.0)),
    "base R15 beam2": Revision("base", RevisionOptions(every=15.0, whisper=replace(SETTLE, beam_size=2))),
    "base R15 beam1": Revision("base", RevisionOptions(every=15.0, whisper=replace(SETTLE, beam_size=1))),
    "base R20": Revision("base", RevisionOptions(every=20.0)),
    "base R15 resettle": Revision("base", RevisionOptions(every=15.0, resettle=True, context=28.0)),
    "base R15 pause3 anytime": Revision("base", RevisionOptions(every=15.0), anytime=True),
    "base R8 resettle": Revision("base", RevisionOptions(every=8.0, resettle=True, context=28.0)),
}


@dataclass
class Settling:
    """One reviser's run: its settled captions by utterance, its passes' CPU, each utterance's delay."""

    reviser: Reviser
    anytime: bool = False
    """A pause is any ``pause`` seconds without a final, even while someone talks."""
    finals: dict[tuple[str, int], Caption] = field(default_factory=dict)
    settled: dict[tuple[str, int], Caption] = field(default_factory=dict)
    cpu: float = 0.0
    delays: list[float] = field(default_factory=list)

    def add(self, final: Caption, said: Heard) -> None:
        self.finals[(final.speaker, final.utterance)] = final
        self.reviser.add(final, said)

    def run(self, now: float, *, talking: bool = False, finish: bool = False) -> None:
        if not finish and not self.reviser.due(now, talking=talking and not self.anytime):
            return
        cpu = time.process_time()
        events = self.reviser.finish() if finish else self.reviser.revise()
        cpu = time.process_time() - cpu
        self.cpu += cpu
        for e in events:
            key = (e.speaker, e.utterance)
            if key not in self.settled:
                self.delays.append(now + cpu - self.finals[key].end)
            self.settled[key] = e


@dataclass
class Run:
    """Each speaker's final text, each reviser's settled text, and CPU seconds."""

    finals: dict[str, str]
    cpu: float
    """The whole feed's, revision passes excluded."""
    settled: dict[str, Settling]


CHUNK = SAMPLE_RATE // 50
TICK = 0.05


def opus_round_trip(samples: np.ndarray, bitrate: int) -> np.ndarray:
    """A 48 kHz int16 track through Opus at ``bitrate`` bit/s (20 ms frames, as WebRTC sends) and back
    as the agent decodes it.

    Decoded by the agent's own :class:`~transcribe.live_audio.OpusStream`, at 16 kHz float32.
    """
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = RATE
    encoder.layout = "mono"  # type: ignore[attr-defined]
    encoder.format = "s16"  # type: ignore[attr-defined]
    encoder.bit_rate = bitrate
    stream = OpusStream()
    step = RATE // 50
    out: list[np.ndarray] = []
    for i in range(0, len(samples) - step + 1, step):
        frame = av.AudioFrame.from_ndarray(samples[i : i + step].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = i
        for packet in encoder.encode(frame):  # type: ignore[attr-defined]
            assert packet.pts is not None
            decoded = stream.push(bytes(packet), packet.pts, packet.pts / RATE)
            if decoded is not None:
                out.append(decoded[1])
    return np.concatenate(out)


def after_warmup(heard: dict[str, np.ndarray], bitrate: int) -> dict[str, np.ndarray]:
    """The script 2 s after the live bench's warm-up speaker, who is in the room (its finals too)."""
    warm = opus_round_trip(warmup(), bitrate)
    lead = np.zeros(len(warm) + 2 * SAMPLE_RATE, dtype=np.float32)
    out = {sp: np.concatenate([lead, a]) for sp, a in heard.items()}
    length = max(len(a) for a in out.values())
    return {**out, "warmup": np.concatenate([warm, np.zeros(length - len(warm), dtype=np.float32)])}


def live_finals(
    plan: Script,
    heard: dict[str, np.ndarray],
    design: Design,
    *,
    interims: bool = False,
    revisions: dict[str, Revision] | None = None,
    revise_threads: int = 1,
) -> Run:
    """Each speaker's final text, and the CPU seconds of the whole run; with ``revisions``, their settled text."""
    model = load_model(design.interim, cpu_threads=design.threads)
    final_model = load_model(design.final, cpu_threads=design.threads)
    room = RoomContext()
    settling = {
        name: Settling(Reviser(load_model(r.model, cpu_threads=revise_threads), options=r.options), r.anytime)
        for name, r in (revisions or {}).items()
    }

    def on_final(final: Caption, said: Heard) -> None:
        for s in settling.values():
            s.add(final, said)

    # Without interim passes unless asked: finals do not depend on them (their prompt is the room's
    # finals), and the CPU figure is then the final passes' (plus the VAD's).
    options = StreamingOptions(final_context=design.context)
    if not interims:
        options = replace(options, interval=1e9)
    options = replace(options, final_whisper=replace(options.final_whisper, beam_size=design.beam))
    live = {
        sp: StreamingTranscriber(
            model,
            speaker=sp,
            final_model=final_model,
            options=options,
            room=room,
            on_final=on_final if settling else None,
        )
        for sp in heard
    }
    finals: dict[str, list[Caption]] = {sp: [] for sp in heard}
    length = min(len(a) for a in heard.values())
    per_tick = int(TICK * SAMPLE_RATE)
    cpu = time.process_time()
    for tick in range(0, length, per_tick):
        for sp, t in live.items():
            # Each chunk ends at the tick's end: 50 ms is not a whole number of 20 ms chunks, and a
            # chunk running into the next tick's audio fed 10 ms of every 50 ms twice (the transcribers
            # heard a stutter, on a clock 1.2x the room's).
            stop = min(tick + per_tick, length)
            for i in range(tick, stop, CHUNK):
                t.insert_audio_chunk(heard[sp][i : min(i + CHUNK, stop)], i / SAMPLE_RATE)
            finals[sp] += [e for e in t.process_iter() if e.final]
        for s in settling.values():
            s.run(stop / SAMPLE_RATE, talking=any(t.talking for t in live.values()))
    for sp, t in live.items():
        finals[sp] += [e for e in t.finish() if e.final]
    for s in settling.values():
        s.run(length / SAMPLE_RATE, finish=True)
    cpu = time.process_time() - cpu - sum(s.cpu for s in settling.values())
    return Run(_texts(finals), cpu, settling)


def _texts(finals: dict[str, list[Caption]]) -> dict[str, str]:
    return {sp: " ".join(e.text for e in sorted(f, key=lambda e: e.start)) for sp, f in finals.items()}


def settled_texts(finals: dict[str, str], settling: Settling) -> dict[str, str]:
    """Each speaker's text with every settled utterance's settled text (a final never settled stays)."""
    by_speaker: dict[str, list[Caption]] = {sp: [] for sp in finals}
    for key, final in settling.finals.items():
        by_speaker[final.speaker].append(settling.settled.get(key, final))
    return _texts(by_speaker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--turns", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1, help="the first run's script")
    parser.add_argument("--design", action="append", choices=sorted(DESIGNS), help="default: all")
    parser.add_argument("--texts", action="store_true")
    parser.add_argument(
        "--warmup", action="store_true", help="the live bench's warm-up speaker first, in the room (its CPU counts too)"
    )
    parser.add_argument("--interims", action="store_true", help="interim passes too: the CPU figure is all passes'")
    parser.add_argument("--pipeline", default=DEFAULT_MODEL, help="the offline pipeline's model (WHISPER_MODEL)")
    parser.add_argument(
        "--revise", action="append", choices=sorted(REVISIONS), help="settle each design's finals this way too"
    )
    parser.add_argument("--revise-threads", type=int, default=1, help="CPU threads of a revision pass")
    parser.add_argument(
        "--kbps",
        type=kbps_argument,
        default=speaker_kbps(),
        help="Opus kb/s the speakers send at (default %(default)s: what the SFU asks browsers for,"
        " SPACES_SFU_OPUS_BITRATE; bench.live_captions' aiortc speakers send 96)",
    )
    args = parser.parse_args()
    pipeline = args.pipeline
    designs = args.design or list(DESIGNS)
    revisions = {r: REVISIONS[r] for r in args.revise or ()}
    names = ["offline", *(f"{d}{suffix}" for d in designs for suffix in ["", *(f" + {r}" for r in revisions)])]
    rows: dict[str, list[Any]] = {d: [] for d in names}
    totals = {d: [0, 0, 0.0, 0.0] for d in rows}
    delays: dict[str, list[float]] = {d: [] for d in names}
    load0 = os.getloadavg()[0]
    for run in range(args.runs):
        plan = script(args.turns, seed=args.seed + run)
        speech = sum(s.end - s.start for s in plan.said)
        heard = {sp: opus_round_trip(a, args.kbps * 1000) for sp, a in plan.tracks.items()}
        if args.warmup:
            heard = after_warmup(heard, args.kbps * 1000)
        results = {"offline": (offline_texts(plan, pipeline), 0.0)}
        for d in designs:
            out = live_finals(
                plan, heard, DESIGNS[d], interims=args.interims, revisions=revisions, revise_threads=args.revise_threads
            )
            results[d] = (out.finals, out.cpu)
            for r, settling in out.settled.items():
                results[f"{d} + {r}"] = (settled_texts(out.finals, settling), settling.cpu)
                delays[f"{d} + {r}"] += settling.delays
        for d, (texts, cpu) in results.items():
            e, n = script_errors(plan, texts)
            totals[d][0] += e
            totals[d][1] += n
            totals[d][2] += cpu
            totals[d][3] += speech
            rows[d].append(f"{e}/{n}")
            if args.texts and d != "offline":
                for sp in texts:
                    print(f"run {run} {d:>16} {sp}: {texts[sp]}")
    off = totals["offline"][0] / totals["offline"][1]

    def threads(d: str) -> str:
        if " + " in d:
            return str(args.revise_threads)
        return str(DESIGNS[d].threads) if d in DESIGNS else "-"

    def delay(d: str) -> str:
        if not delays[d]:
            return "-"
        p50, p95, top = np.percentile(delays[d], [50, 95, 100])
        return f"{p50:.1f} / {p95:.1f} / {top:.1f} s"

    body = [
        [
            d,
            threads(d),
            *rows[d],
            f"{e / n:.4f}",
            f"{(e / n) / off:.2f}x" if off else "-",
            f"{cpu / speech:.2f}" if cpu else "-",
            delay(d),
        ]
        for d, (e, n, cpu, speech) in totals.items()
    ]
    print(
        table(
            f"Final captions' WER, {args.runs} runs x {args.turns} turns, offline on {model_label(pipeline)}"
            f" (load average {load0:.1f} -> {os.getloadavg()[0]:.1f})",
            [
                "design",
                "threads",
                *[f"run {i + 1} errors" for i in range(args.runs)],
                "pooled WER",
                "/ offline",
                "all passes' CPU s / speech s" if args.interims else "final (settling: revision) CPU s / speech s",
                "settled after p50 / p95 / max",
            ],
            body,
        )
    )


if __name__ == "__main__":
    main()
