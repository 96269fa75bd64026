"""The live HLS (issue 11's targets): the mix's CPU per room, a listener's delay, many listeners on the API.

    .venv/bin/python -m bench.hls [--seconds 30] [--listeners 500,1000,2000] [--joins 4] [--skip mix,delay]

1. **Live mix CPU per room.** Two speakers' known speech, Opus-encoded in
   20 ms packets as WebRTC sends them, decoded with the agent's
   ``OpusStream``, mixed and encoded by ``workers.hls.LiveHls`` in real
   time into a local store: CPU of this process and its ffmpeg (decode +
   mix + encode), per second of room time.
2. **Word to HLS listener.** Headless Chromium plays the live master
   playlist natively (as the live page does, with ``hlsplayer.js``) in
   ``--joins`` pages that join over one segment's time, while the room goes
   on; every second the page's delay (room time now minus the
   room time playing, from the segments' program date-times) is sampled once
   the page has caught up (``hlsplayer.js`` moves Chromium's start towards
   the live edge, muted): a word is heard that long after it is said. The
   same from outside the page: the player's buffer ends with the newest
   segment it fetched (Resource Timing names it, the playlist gives its room
   time), which splits the delay into what the player holds ahead and how
   old that newest segment is. Also each listener's figures, how its start
   went, when it was first heard, the stalls once playing (``waiting``
   events), and the publish lag: from a segment's last sample to the
   playlist naming it.
3. **Concurrent HLS listeners.** The API (uvicorn, one process, local store)
   serves a live space's HLS; N players on loopback (``bench.hls_crowd``:
   each on its own keep-alive connection reads ``audio.m3u8`` every target
   duration and each new segment once, in ``--client-processes``
   processes). The API is pinned to the first CPU, the players and the
   room to the others. Latency p50/p99, errors, the API's CPU per listener
   and the players' CPU (they must not be the limit); "polls done" says how
   many of the polls the players should have made were made.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import http.server
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

from bench import hls_crowd
from bench.common import cpu_times, run_queue_wait, tree_cpu
from spaces import hls
from spaces.blobstore.local import LocalBlobStore
from spaces.catalog import open_catalog
from spaces.models import Space, SpaceState
from spaces.settings import Settings
from tests.speech import VOICES, synthesize
from transcribe.live_audio import OpusStream
from workers.hls import HlsOptions, LiveHls

STATIC = Path(__file__).resolve().parents[1] / "replay_api" / "static"
CHROMIUM = "/usr/bin/chromium"
SENTENCES = (
    ("alice", "The weather was lovely this morning, so we walked down to the river.", VOICES[0]),
    ("bob", "Our team finished the project two weeks ahead of schedule.", VOICES[1]),
)


def opus_packets(text: str, voice: str) -> list[tuple[bytes, int]]:
    """(payload, RTP timestamp) of 20 ms Opus packets of the sentence and a second of silence."""
    speech = synthesize(text, voice)
    pcm16 = np.concatenate([speech.samples, np.zeros(16000, np.float32)])
    frame = av.AudioFrame.from_ndarray((pcm16 * 20000).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 16000
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    pcm48 = np.concatenate(
        [f.to_ndarray().reshape(-1) for f in (*resampler.resample(frame), *resampler.resample(None))]
    )
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
    encoder.bit_rate = 32000
    packets: list[tuple[bytes, int]] = []
    for i in range(0, len(pcm48) - 960, 960):
        f = av.AudioFrame.from_ndarray(pcm48[i : i + 960].reshape(1, -1), format="s16", layout="mono")
        f.sample_rate, f.pts = 48000, i
        packets += [(bytes(p), i) for p in encoder.encode(f)]
    return packets


class Room:
    """A room in real time: speakers' packets decoded (as the agent does) into a live HLS writer."""

    def __init__(self, root: Path, space_id: str, segment: float) -> None:
        self.clock0 = time.time()
        self.writer = LiveHls(
            LocalBlobStore(root),
            space_id,
            lambda: time.time() - self.clock0,
            clock0=self.clock0,
            options=HlsOptions(segment_seconds=segment),
        )
        self.packets = {name: opus_packets(text, voice) for name, text, voice in SENTENCES}
        self.streams = {name: OpusStream() for name in self.packets}
        self.listed: dict[int, float] = {}
        """Wall time each segment was first seen in the playlist."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._speak, daemon=True)

    def start(self) -> None:
        self.writer.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.writer.stop()

    def _speak(self) -> None:
        # Turns: alice, then bob, each sentence followed by its second of silence, looped.
        turns = [(name, p) for name, packets in self.packets.items() for p in packets]
        i, start = 0, time.time()
        while not self._stop.is_set():
            name, (payload, ts) = turns[i % len(turns)]
            lap = i // len(turns)
            rtp = (ts + lap * 48000 * 60) & 0xFFFFFFFF
            now = time.time() - self.clock0
            decoded = self.streams[name].push(payload, rtp, now)
            if decoded is not None:
                self.writer.audio(name, *decoded)
            i += 1
            # One packet per 20 ms of wall time: the pace a sender keeps.
            delay = start + i * 0.02 - time.time()
            if delay > 0:
                time.sleep(delay)


def mix_cpu(seconds: float, segment: float) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-hls-"))
    try:
        room = Room(root, "bench", segment)
        before, t0 = tree_cpu(os.getpid()), time.time()
        room.start()
        time.sleep(seconds)
        room.stop()
        cpu, wall = tree_cpu(os.getpid()) - before, time.time() - t0
        sizes = [p.stat().st_size for p in (root / hls.prefix("bench")).glob("*.ts")]
        return {
            "cpu_s": cpu,
            "wall_s": wall,
            "core_pct": 100 * cpu / wall,
            "segments": len(sizes),
            "segment_kb": float(np.mean(sizes)) / 1024 if sizes else 0.0,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


_PAGE = r"""<!doctype html><meta charset=utf-8><audio id=a controls></audio>
<script>performance.setResourceTimingBufferSize(100000);</script>
<script src="hlsplayer.js"></script>
<script>window.p = HlsPlayer({url: "master.m3u8", audio: document.getElementById("a"), autoplay: true});</script>
"""


def listener_delay(seconds: float, segment: float, joins: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="bench-hls-"))
    room = Room(root, "bench", segment)
    live = root / hls.prefix("bench")
    try:
        room.start()
        audio_key = hls.key("bench", hls.AUDIO)
        blobs = LocalBlobStore(root)
        while not blobs.exists(audio_key):
            time.sleep(0.05)
        stop = threading.Event()

        def watch() -> None:
            # When each segment is first named by the playlist, against its last sample's wall time.
            while not stop.is_set():
                playlist = hls.MediaPlaylist.parse(blobs.get(audio_key).decode(), ext="ts")
                for e in playlist.entries:
                    room.listed.setdefault(e.seq, time.time() - (room.clock0 + e.start + e.duration))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        shutil.copy(STATIC / "hlsplayer.js", live / "hlsplayer.js")
        (live / "index.html").write_text(_PAGE)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def guess_type(self, path: str | os.PathLike[str]) -> str:
                return hls.PLAYLIST_TYPE if str(path).endswith(".m3u8") else super().guess_type(path)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(live)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        time.sleep(3 * segment)  # a player joins a room already going
        samples: list[float] = []
        checked: list[float] = []
        buffered: list[float] = []
        """Seconds of audio the player held ahead of what it played."""
        newest_age: list[float] = []
        """How old (room time) the end of the newest segment the player fetched was."""
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--headless=new", "--autoplay-policy=no-user-gesture-required"],
            )
            pages = []
            by_page: list[tuple[list[float], list[float]]] = [([], []) for _ in range(joins)]
            """Each listener's (page's delay, checked delay) samples."""
            for i in range(joins):
                # Joins spread over one segment: a listener's delay depends on when in
                # the segment clock it joins.
                time.sleep(segment / joins if i else 0)
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
                # A stall once playing (the next segment late) adds to the delay for good; the
                # page's move to the live edge (muted) is no stall. When it is first heard.
                page.evaluate(
                    "(a => { window.stalls = 0; a.addEventListener('waiting', () => { if (a.currentTime > 0 && "
                    "!window.p.catchingUp) window.stalls += 1; }); const t = setInterval(() => { if (!a.paused && "
                    "a.currentTime > 0 && !window.p.catchingUp) { window.heardAt = performance.now(); "
                    "clearInterval(t); } }, 50); })(document.getElementById('a'))"
                )
                pages.append(page)
            deadline = time.time() + seconds
            while time.time() < deadline:
                time.sleep(1)
                for i, page in enumerate(pages):
                    before = time.time()
                    playing, delay, ahead, newest = page.evaluate(
                        "(a => [!a.paused && a.currentTime > 0 && !window.p.catchingUp, window.p.delay, "
                        "a.buffered.length ? a.buffered.end(a.buffered.length - 1) - a.currentTime : null, "
                        "Math.max(-1, ...performance.getEntriesByType('resource')"
                        ".map(e => /(\\d{6})\\.ts$/.exec(e.name)).filter(m => m).map(m => +m[1]))])"
                        "(document.getElementById('a'))"
                    )
                    now = (before + time.time()) / 2 - room.clock0
                    if playing and delay is not None:
                        samples.append(float(delay))
                        by_page[i][0].append(float(delay))
                    # Checked without the page's own reckoning: the player's buffer ends
                    # with the newest segment it fetched (Resource Timing names it), whose
                    # room time the playlist gives; it plays that far behind its end.
                    if playing and ahead is not None and newest >= 0:
                        text = blobs.get(hls.full_key("bench", hls.AUDIO)).decode()
                        entry = next(e for e in hls.MediaPlaylist.parse(text, ext="ts").entries if e.seq == newest)
                        buffered.append(float(ahead))
                        newest_age.append(now - (entry.start + entry.duration))
                        checked.append(newest_age[-1] + buffered[-1])
                        by_page[i][1].append(checked[-1])
            ends = [
                page.evaluate(
                    "(a => [window.stalls, a.error && a.error.message, window.heardAt, window.p.liveStart])"
                    "(document.getElementById('a'))"
                )
                for page in pages
            ]
            browser.close()
        server.shutdown()
        stop.set()
        watcher.join()
        heard = [h / 1000 for _, _, h, _ in ends if h]
        """Seconds from a page's opening to its first audible sound."""
        lags = list(room.listed.values())[1:]  # the first was there before the watcher
        return {
            "samples": len(samples),
            "delay_p50": float(np.percentile(samples, 50)) if samples else float("nan"),
            "delay_p95": float(np.percentile(samples, 95)) if samples else float("nan"),
            "checked_p50": float(np.percentile(checked, 50)) if checked else float("nan"),
            "per_listener": [
                (round(float(np.median(d)), 2) if d else None, round(float(np.median(c)), 2) if c else None)
                for d, c in by_page
            ],
            "publish_lag_p50": float(np.percentile(lags, 50)) if lags else float("nan"),
            "publish_lag_p95": float(np.percentile(lags, 95)) if lags else float("nan"),
            "publish_lag_max": max(lags) if lags else float("nan"),
            "buffered_p50": float(np.percentile(buffered, 50)) if buffered else float("nan"),
            "newest_age_p50": float(np.percentile(newest_age, 50)) if newest_age else float("nan"),
            "heard_p50": float(np.percentile(heard, 50)) if heard else float("nan"),
            "stalls": sum(stall for stall, *_ in ends),
            "errors": [error for _, error, *_ in ends if error],
            "starts": [start for *_, start in ends],
        }
    finally:
        room.stop()
        shutil.rmtree(root, ignore_errors=True)


def api_listeners(
    counts: list[int],
    seconds: float,
    segment: float,
    *,
    processes: int,
    api_code: Path | None,
    access_log: bool,
    nice: int,
) -> list[dict[str, float]]:
    data = Path(tempfile.mkdtemp(prefix="bench-hls-api-"))
    settings = Settings(data_dir=data, queue_name=f"bench-{uuid.uuid4().hex[:8]}")
    catalog = open_catalog(settings)
    catalog.create_schema()
    space_id = "benchhls"
    catalog.put_space(Space(space_id=space_id, title="Crowd", host="alice", created_at=time.time()))
    catalog.set_state(space_id, SpaceState.LIVE)
    catalog.close()
    # The API on the first CPU; the players, this process (the room) and its ffmpeg on the others.
    cpus = sorted(os.sched_getaffinity(0))
    api_cpus, player_cpus = ({cpus[0]}, set(cpus[1:])) if len(cpus) > 1 else (set(cpus), set(cpus))
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, player_cpus)
    _autogroup_nice(nice)
    room = Room(settings.blob_dir, space_id, segment)
    port = 18000 + os.getpid() % 1000
    env = {**os.environ, "SPACES_DATA_DIR": str(data), "SPACES_QUEUE_NAME": settings.queue_name}
    if api_code is not None:  # an export of another commit (a before/after), run as it is
        env["PYTHONPATH"] = str(api_code)
    # ``spaces up`` logs every request (uvicorn's access log at info); --api-access-log measures that too.
    log_args = ["--log-level", "info"] if access_log else ["--log-level", "warning", "--no-access-log"]
    api = subprocess.Popen(
        ["nice", "-n", str(nice), "taskset", "-c", ",".join(map(str, sorted(api_cpus))),
         sys.executable, "-m", "uvicorn", "--factory", "replay_api.app:create_app", "--port", str(port), *log_args],
        env=env, cwd=api_code, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if access_log else None,
    )  # fmt: skip
    rows = []
    try:
        room.start()
        base = f"http://127.0.0.1:{port}/spaces/{space_id}/"
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(base + "hls/audio.m3u8").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "the API did not serve the playlist"
            time.sleep(0.3)

        def probe() -> tuple[float, float]:
            return sum(cpu_times(api.pid)), run_queue_wait(api.pid)

        for n in counts:
            load0 = os.getloadavg()[0]
            crowd = hls_crowd.listen(
                "127.0.0.1", port, f"/spaces/{space_id}/hls/", n,
                seconds=seconds, target=segment, processes=processes, cpus=player_cpus, nice=nice, probe=probe,
            )  # fmt: skip
            api_cpu, waited = crowd.server
            result = {
                **{k: v for k, v in dataclasses.asdict(crowd).items() if k != "server"},
                "listeners": n,
                "api_core_pct": 100 * api_cpu / seconds,
                "api_cpu_us_per_listener_s": 1e6 * api_cpu / (n * seconds),
                # Runnable but not running: the machine, not the API, was the limit for that long.
                "api_waited_pct": 100 * waited / seconds,
                "load_start": load0,
                "load_end": os.getloadavg()[0],
            }
            rows.append(result)
            print(f"  {n} listeners: {result}", flush=True)
    finally:
        room.stop()
        api.terminate()
        api.wait()
        os.sched_setaffinity(0, mine)
        _autogroup_nice(0)
        shutil.rmtree(data, ignore_errors=True)
    return rows


def _autogroup_nice(nice: int) -> None:
    """Give this session's processes (this one, the API, the players) that niceness as a group.

    With the kernel's autogroups a process's niceness only counts against
    its own session's other processes; against everything else on the
    machine (other sessions) the session as a whole competes.
    """
    try:
        Path("/proc/self/autogroup").write_text(str(nice))
    except OSError as e:
        print(f"  (niceness {nice} for the session not set: {e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--listeners", default="500,1000,2000")
    parser.add_argument("--segment", type=float, default=2.0)
    parser.add_argument("--joins", type=int, default=4, help="HLS listeners whose delay is measured")
    parser.add_argument("--client-processes", type=int, default=2, help="processes the HLS players run in")
    parser.add_argument(
        "--api-code", type=Path, help="run the API from this directory (an export of another commit: before/after)"
    )
    parser.add_argument("--api-access-log", action="store_true", help="the API logs each request, as `spaces up` does")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the API and the players (e.g. -10 on a machine busy with other work: they then get "
        "the CPU they need, which the table shows, instead of waiting behind it)",
    )
    parser.add_argument("--skip", default="", help="comma list of parts to skip: mix,delay,api")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(f"load average at start: {os.getloadavg()}")
    if "mix" not in skip:
        m = mix_cpu(args.seconds, args.segment)
        print(
            f"live mix per room (decode + mix + AAC encode + store), {m['wall_s']:.0f} s: "
            f"{m['core_pct']:.1f} % of one core ({m['cpu_s']:.2f} CPU s); "
            f"{m['segments']} segments of {m['segment_kb']:.1f} KB"
        )
    if "delay" not in skip and shutil.which(CHROMIUM):
        d = listener_delay(args.seconds, args.segment, args.joins)
        print(
            f"word to HLS listener ({args.segment:g} s segments, Chromium native HLS, {args.joins} listeners, "
            f"{d['samples']} samples): "
            f"p50 {d['delay_p50']:.2f} s, p95 {d['delay_p95']:.2f} s (checked from outside the page: "
            f"p50 {d['checked_p50']:.2f} s); "
            f"segment named by the playlist {d['publish_lag_p50']:.2f} s after its last sample (p50; p95 "
            f"{d['publish_lag_p95']:.2f} s, max {d['publish_lag_max']:.2f} s); "
            f"the delay split (p50): {d['buffered_p50']:.2f} s buffered in the player + the newest segment it "
            f"holds ending {d['newest_age_p50']:.2f} s ago; first heard {d['heard_p50']:.1f} s after the page opened; "
            f"stalls once playing: {d['stalls']}; player errors: {d['errors']}; "
            f"each listener's p50 (page, checked): {d['per_listener']}; live starts: {d['starts']}"
        )
    if "api" not in skip:
        counts = [int(n) for n in args.listeners.split(",")]
        rows = api_listeners(
            counts,
            args.seconds,
            args.segment,
            processes=args.client_processes,
            api_code=args.api_code,
            access_log=args.api_access_log,
            nice=args.nice,
        )
        print(
            "| listeners | requests | errors | p50 ms | p99 ms | max ms | p99 ms joining | polls done | API % core "
            "| API CPU us per listener-s | API waited for a CPU | players % core | load avg (1 min) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['listeners']:.0f} | {r['requests']:.0f} | {r['errors']:.0f} | {r['p50_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['max_ms']:.0f} | {r['join_p99_ms']:.0f} | {r['polls_done_pct']:.0f} % | "
                f"{r['api_core_pct']:.0f} | "
                f"{r['api_cpu_us_per_listener_s']:.0f} | {r['api_waited_pct']:.0f} % | {r['clients_core_pct']:.0f} | "
                f"{r['load_start']:.1f} -> {r['load_end']:.1f} |"
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
