"""One run: seed, open the rooms, the live window, the drain, and what was measured."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from bench.common import cpu_times, readline, tree_cpu, udp_backlog, udp_drops
from bench.load.corpus import import_spaces, recorded_spaces, search_queries, speaker_audio
from bench.load.rooms import Room, ask, chunks, create_rooms, sfu_stats, spawn_clients, tell
from bench.load.stack import Stack, enqueue, settings_of, start_stack, states, wait_processed
from spaces.blobstore import BlobStore
from tests.support.faults import drop_queue

PYTHON = sys.executable
FRAME_SECONDS = 0.02  # aiortc sends one 20 ms Opus frame per RTP packet
#: Seconds the rooms may take to be recorded (handed over to the queue) once ended.
HANDOVER_TIMEOUT = 120.0
#: A stream (or a speaker's sending) that ended this long before the speakers were stopped ended early.
EARLY = 1.0


@dataclass
class Cpu:
    """CPU seconds of each process we started, read at the phase boundaries."""

    pids: dict[str, int]
    marks: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    def mark(self) -> None:
        now = time.monotonic()
        values = {}
        for name, pid in self.pids.items():
            try:
                values[name] = tree_cpu(pid) if name == "worker" else sum(cpu_times(pid))
            except OSError:
                values[name] = float("nan")
        values["bench"] = sum(cpu_times(os.getpid()))
        self.marks.append((now, values))

    def share(self, a: int, b: int) -> dict[str, float]:
        (t0, v0), (t1, v1) = self.marks[a], self.marks[b]
        return {name: (v1[name] - v0[name]) / max(1e-9, t1 - t0) for name in v0}


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    load_start = os.getloadavg()
    print(f"bench-load: {args.rooms} rooms x (2 speakers + {args.listeners} listeners), {args.minutes:g} min; "
          f"load average {load_start[0]:.2f} on {os.cpu_count()} CPUs; work dir {work}", flush=True)  # fmt: skip
    began = time.monotonic()
    stack = start_stack(work, redis_url=args.redis_url, nodes=args.nodes)
    ok = False
    try:
        result = _run(stack, args, load_start)
        ok = True
        return result
    finally:
        stack.stop()
        try:
            drop_queue(settings_of(stack))
        except Exception as e:  # noqa: BLE001 - tidying up; say so and go on
            print(f"(could not delete the bench queue's jobs: {e})", file=sys.stderr)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)
        print(f"total {time.monotonic() - began:.0f} s", flush=True)


@dataclass
class Seeded:
    """Spaces made before the rooms open: ready ones to replay and search, a backlog to process under load."""

    ready: list[str]
    backlog: list[str]
    audio_sizes: list[tuple[str, int]]


@dataclass
class Clients:
    """The client processes of a run, once every peer tried to join."""

    speakers: list[subprocess.Popen[str]]
    listeners: list[subprocess.Popen[str]]
    api: subprocess.Popen[str]
    count: int
    """Peers asked to join (speakers and listeners)."""

    @property
    def peers(self) -> list[subprocess.Popen[str]]:
        return self.speakers + self.listeners


@dataclass
class Window:
    """What the live window measured."""

    stopped_at: float
    """Wall-clock time the speakers were told to stop."""
    sent: dict[str, dict[str, float]]
    udp_drops: int
    sfu_backlog: int
    sfu_samples: list[float]
    load: tuple[float, float, float]
    stats: dict[str, Any]


@dataclass
class Drain:
    handover: float
    drain: float
    api: dict[str, Any]
    reports: list[dict[str, Any]]
    states: dict[str, str]


def _run(stack: Stack, args: argparse.Namespace, load_start: tuple[float, float, float]) -> dict[str, Any]:
    from spaces.blobstore import open_blob_store

    blobs = open_blob_store(settings_of(stack))
    seeded = seed(stack, args, blobs)
    rooms = create_rooms(stack, args.rooms, args.listeners, speaker_audio(stack.work))
    clients = join(stack, rooms, args, seeded)
    pids = {name: stack.procs[name].pid for name in (*stack.sfu_urls, "api", "worker")}
    pids.update({name: p.pid for name, p in stack.procs.items() if name.startswith(("speakers", "listeners"))})
    pids["api-clients"] = clients.api.pid
    cpu = Cpu(pids)
    window = live_window(stack, clients, seeded.backlog, args.minutes * 60, cpu)
    drained = drain(stack, clients, rooms, seeded, args.drain_timeout, cpu)
    return {
        "rooms": args.rooms,
        "listeners": args.listeners,
        "minutes": args.minutes,
        "sfu_nodes": list(stack.sfu_urls),
        "cpus": os.cpu_count(),
        "load_start": load_start,
        "load_live": window.load,
        "clients": clients.count,
        **stream_figures(drained.reports, window.stopped_at),
        "udp_drops": window.udp_drops,
        "sfu_backlog": window.sfu_backlog,
        "speakers": recording(blobs, rooms, window),
        "handover": drained.handover,
        "drain": drained.drain,
        "states": drained.states,
        "api": drained.api,
        "cpu_live": cpu.share(0, 1),
        "cpu_drain": cpu.share(1, 2),
        "sfu_peak": max(window.sfu_samples, default=float("nan")),
        "window": cpu.marks[1][0] - cpu.marks[0][0],
        "seeded": len(seeded.ready),
        "backlog": len(seeded.backlog),
        "api_rate": args.api_rate,
    }


def seed(stack: Stack, args: argparse.Namespace, blobs: BlobStore) -> Seeded:
    """Something to replay and search, processed before the rooms open; a backlog imported, not yet enqueued."""
    from spaces import keys

    t = time.monotonic()
    ready = import_spaces(stack, recorded_spaces(stack.work, args.seed, minutes=0.5, first_seed=100), "Seeded")
    for space_id in ready:
        enqueue(stack, space_id)
    backlog = import_spaces(
        stack, recorded_spaces(stack.work, args.backlog, minutes=args.backlog_minutes, first_seed=200), "Backlog"
    )
    wait_processed(stack, ready, 600)
    print(f"seeded {len(ready)} ready spaces, imported {len(backlog)} to process under load "
          f"({time.monotonic() - t:.0f} s)", flush=True)  # fmt: skip
    return Seeded(ready, backlog, [(s, blobs.size(keys.replay(s, "ogg"))) for s in ready])


def join(stack: Stack, rooms: list[Room], args: argparse.Namespace, seeded: Seeded) -> Clients:
    """Every room's speakers, then its listeners, in client processes; then the API client process."""
    t = time.monotonic()
    speaker_procs = [
        spawn_clients(stack, f"speakers-{i}", group)
        # Whole rooms per process (an even count): a host and its guest join in order.
        for i, group in enumerate(
            chunks([p for r in rooms for p in r.speakers], 2 * max(1, args.speakers_per_process // 2))
        )
    ]
    ready = [json.loads(readline(p, 120)) for p in speaker_procs]
    listener_peers = [p for r in rooms for p in r.listeners]
    per_process = max(1, math.ceil(len(listener_peers) / max(1, math.ceil(len(listener_peers) / args.per_process))))
    listener_procs = [
        spawn_clients(stack, f"listeners-{i}", group) for i, group in enumerate(chunks(listener_peers, per_process))
    ]
    ready += [json.loads(readline(p, 600)) for p in listener_procs]
    joined = sum(r["ready"] for r in ready)
    count = len(listener_peers) + 2 * len(rooms)
    print(f"{joined} of {count} clients joined in {time.monotonic() - t:.0f} s "
          f"({len(speaker_procs)} speaker and {len(listener_procs)} listener processes)", flush=True)  # fmt: skip
    for r in ready:
        for e in r["errors"]:
            print(f"  join error: {e}", file=sys.stderr)

    api_spec = stack.work / "api-clients.json"
    api_spec.write_text(json.dumps({"audio": seeded.audio_sizes, "queries": search_queries(), "rate": args.api_rate}))
    api_clients = stack.spawn(
        "api-clients",
        [PYTHON, "-m", "bench.load", "api-clients", "--url", stack.api_url, "--spec", str(api_spec)],
        stdin=True,
    )
    return Clients(speaker_procs, listener_procs, api_clients, count)


def live_window(stack: Stack, clients: Clients, backlog: list[str], window: float, cpu: Cpu) -> Window:
    """``window`` seconds of live rooms, the backlog enqueued evenly across it; then the speakers stop."""
    nodes = [cpu.pids[name] for name in stack.sfu_urls]
    drops0 = udp_drops()
    cpu.mark()
    t0 = time.monotonic()
    due = [(t0 + (i + 0.5) * window / len(backlog), space_id) for i, space_id in enumerate(backlog)]
    sfu_samples: list[float] = []
    backlog_bytes = 0
    last = (t0, [sum(cpu_times(pid)) for pid in nodes])
    while time.monotonic() < t0 + window:
        time.sleep(min(5.0, max(0.05, t0 + window - time.monotonic())))
        stack.check()
        now, used = time.monotonic(), [sum(cpu_times(pid)) for pid in nodes]
        # The busiest node: the first to run out of its core.
        sfu_samples.append(max(b - a for a, b in zip(last[1], used, strict=True)) / (now - last[0]))
        backlog_bytes = max(backlog_bytes, *(udp_backlog(pid) for pid in nodes))
        last = (now, used)
        while due and due[0][0] <= now:
            enqueue(stack, due.pop(0)[1])
        for p in clients.peers:
            if p.poll() is not None:
                raise RuntimeError(f"client process {p.pid} exited ({p.returncode}); see {stack.work}")
    load_live = os.getloadavg()
    stopped_at = time.time()
    sent: dict[str, dict[str, float]] = {}
    for p in clients.speakers:
        sent.update(ask(p, "stop", 30)["sent"])
    cpu.mark()
    drops = udp_drops() - drops0
    time.sleep(1.0)  # packets in flight and the recorders' reorder buffers
    return Window(stopped_at, sent, drops, backlog_bytes, sfu_samples, load_live, sfu_stats(stack))


def drain(stack: Stack, clients: Clients, rooms: list[Room], seeded: Seeded, timeout: float, cpu: Cpu) -> Drain:
    """End every room; wait until they are handed over, then until every space is processed."""
    t_end = time.monotonic()
    tell(clients.api, "phase drain")
    for p in clients.speakers:
        ask(p, "end", 60)
    for p in clients.listeners:
        ask(p, "end", 60)
    room_ids = [r.space_id for r in rooms]
    wait_processed(stack, room_ids, HANDOVER_TIMEOUT, settled="recorded")
    handed_over = time.monotonic() - t_end
    wait_processed(stack, room_ids + seeded.backlog, timeout)
    drained = time.monotonic() - t_end
    cpu.mark()
    api = ask(clients.api, "stop", 120)
    reports = [ask(p, "report", 60) for p in clients.peers]
    return Drain(handed_over, drained, api, reports, states(stack, room_ids + seeded.backlog + seeded.ready))


def recording(blobs: BlobStore, rooms: list[Room], window: Window) -> list[dict[str, Any]]:
    """Recording completeness per speaker: seconds in the blob store against seconds sent."""
    from spaces import layout

    speakers = []
    recorder_dropped = {
        (room["space_id"], t["track_id"]): t["dropped"] for room in window.stats["rooms"] for t in room["tracks"]
    }
    for room in rooms:
        manifest = layout.read_manifest(blobs, room.space_id)
        by_speaker = {speaker: track_id for track_id, speaker in manifest.tracks}
        for peer in room.speakers:
            seconds, dropped = 0.0, 0
            track_id = by_speaker.get(peer["identity"])
            if track_id is not None:
                track = layout.read_track(blobs, room.space_id, track_id)
                seconds = sum(s.duration for s in track.segments)
                dropped = recorder_dropped.get((room.space_id, track_id), 0)
            out = window.sent.get(peer["identity"], {"packets": 0, "max_gap": float("inf"), "last": 0.0})
            speakers.append(
                {"identity": peer["identity"], "sent": out["packets"] * FRAME_SECONDS, "recorded": seconds,
                 "sent_packets": out["packets"], "recorder_dropped": dropped, "send_gap": out["max_gap"],
                 "stopped_early": window.stopped_at - out["last"] > EARLY}
            )  # fmt: skip
    return speakers


def stream_figures(reports: list[dict[str, Any]], stopped_at: float) -> dict[str, Any]:
    """Joins and packet loss per subscribed stream.

    A stream never heard counts as all lost, one that ended before the
    speakers stopped as lost from then on.
    """
    losses: list[float] = []
    gaps: list[float] = []
    lost_packets = expected_packets = failed_joins = ended_early = 0
    for report in reports:
        for peer in report["peers"]:
            if peer["error"]:
                failed_joins += 1
            streams = peer["streams"]
            for st in streams:
                expected = st["expected"]
                if stopped_at - st["last_arrival"] > EARLY:
                    ended_early += 1
                    expected += int((stopped_at - st["last_arrival"]) / FRAME_SECONDS)
                losses.append(max(0.0, 1 - st["received"] / expected))
                lost_packets += max(0, expected - st["received"])
                expected_packets += expected
                gaps.append(st["max_gap"])
            losses += [1.0] * max(0, peer["expect"] - len(streams))
    joins = [peer["join_seconds"] for r in reports for peer in r["peers"] if peer["join_seconds"] is not None]
    return {
        "failed_joins": failed_joins,
        "join_p50": median(joins) if joins else float("nan"),
        "join_max": max(joins) if joins else float("nan"),
        "streams": len(losses),
        "loss_median": median(losses) if losses else float("nan"),
        "loss_max": max(losses) if losses else float("nan"),
        "lost_packets": lost_packets,
        "ended_early": ended_early,
        "gap_median": median(gaps) if gaps else float("nan"),
        "gap_max": max(gaps, default=float("nan")),
        "expected_packets": expected_packets,
    }
