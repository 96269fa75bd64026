"""The live HLS writer on its own: known speech in, playlists and segments that ffprobe reads out.

The room clock is the test's (advanced by hand), the encoder and the stores
are real: ffmpeg, the local directory, moto's S3 (through a proxy that can
cut it).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spaces import hls
from spaces.blobstore.local import LocalBlobStore
from spaces.blobstore.s3 import S3BlobStore
from spaces.models import Caption, Word
from spaces.settings import Settings
from tests.faults.proxy import TcpProxy
from tests.speech import VOICES, synthesize
from tests.support.clock import ManualClock
from tests.support.services import MotoServer
from workers.hls import HlsOptions, LiveHls

SPACE = "hlsspace"
RATE = 16_000
ALICE_AT, BOB_AT, LENGTH = 0.5, 4.0, 9.0
ALICE_TEXT = "The weather was lovely this morning."
BOB_TEXT = "Our team finished the project early."


def feed(writer: LiveHls, clock: ManualClock, *, until: float, pace: float = 0.0) -> dict[str, list[Word]]:
    """Speak alice and bob (bob 12 dB quieter) in 20 ms packets, advancing the room clock as they go."""
    voices = {
        "alice": (ALICE_AT, synthesize(ALICE_TEXT, VOICES[0]), 1.0),
        "bob": (BOB_AT, synthesize(BOB_TEXT, VOICES[1]), 0.25),
    }
    truth = {
        name: [Word(at + s, at + e, t, name) for s, e, t in speech.words] for name, (at, speech, _) in voices.items()
    }
    step = 0.02
    for i in range(round(clock.now / step), round(until / step)):
        t = i * step
        for name, (at, speech, scale) in voices.items():
            lo = round((t - at) * RATE)
            if 0 <= lo < len(speech.samples):
                writer.audio(name, t, speech.samples[lo : lo + round(step * RATE)] * scale)
        clock.now = t + step
        if pace:
            time.sleep(pace)
    return truth


def final_caption(words: list[Word], seq: int) -> Caption:
    return Caption(
        speaker=words[0].speaker,
        text=" ".join(w.text for w in words),
        start=words[0].start,
        end=words[-1].end,
        final=True,
        seq=seq,
        utterance=seq,
        words=tuple(words),
    )


def probe(path: Path, *entries: str, fmt: str | None = None) -> Any:
    # A segment of silence is a few hundred bytes: too little for ffprobe to
    # guess its container, which a player knows from the playlist.
    forced = ["-f", fmt] if fmt else []
    out = subprocess.run(
        ["ffprobe", "-v", "error", *forced, "-show_entries", ":".join(entries), "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return json.loads(out)


def decode(path: Path) -> np.ndarray:
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-ac", "1", "-ar", str(RATE), "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


def rms_db(samples: np.ndarray) -> float:
    return 10 * math.log10(float((samples**2).mean()) + 1e-12)


def listed(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_known_speech_becomes_a_playlist_ffprobe_reads(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    clock = ManualClock()
    writer = LiveHls(blobs, SPACE, clock, clock0=1_700_000_000.0, options=HlsOptions(tick=0.01, language="en"))
    writer.start()
    truth = feed(writer, clock, until=LENGTH)
    writer.caption(final_caption(truth["alice"], 1))
    writer.caption(final_caption(truth["bob"], 2))
    clock.now = LENGTH + 0.5
    writer.stop()

    live = tmp_path / "blobs" / hls.prefix(SPACE)
    audio = (live / hls.AUDIO).read_text()
    assert audio.rstrip().endswith("#EXT-X-ENDLIST")
    names = listed(audio)
    assert names == [hls.segment_name(i, "ts") for i in range(len(names))]
    assert all((live / n).is_file() for n in names)
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", audio)]
    assert all(1.5 <= d <= 2.2 for d in durations[:-1]), durations
    assert sum(durations) == pytest.approx(LENGTH + 0.5, abs=0.5)
    assert "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20" in audio

    # ffprobe follows the master playlist to the audio and reads each segment.
    master = probe(live / hls.MASTER, "format=duration", "stream=codec_name,sample_rate")
    assert [s["codec_name"] for s in master["streams"]] == ["aac"]
    assert float(master["format"]["duration"]) == pytest.approx(sum(durations), abs=0.3)
    for name in names:
        seg = probe(live / name, "format=duration", "stream=codec_name,sample_rate", fmt="mpegts")
        assert [(s["codec_name"], s["sample_rate"]) for s in seg["streams"]] == [("aac", "16000")]
        assert 1.0 <= float(seg["format"]["duration"]) <= 2.2

    # The speech is where it was said on the room clock, each speaker brought
    # to the same level though bob spoke 12 dB quieter.
    mix = decode(live / hls.AUDIO)
    first = hls.MediaPlaylist.parse(audio, ext="ts").entries[0].start
    # A little of the AAC encoder's priming comes first.
    delay = int(0.064 * RATE)

    def at(t: float) -> int:
        return round((t - first) * RATE) + delay

    for name, words in truth.items():
        before = mix[at(words[0].start - 0.3) : at(words[0].start - 0.05)]
        speech = mix[at(words[0].start) : at(words[-1].end)]
        assert rms_db(speech) > -35, (name, rms_db(speech))
        assert rms_db(before) < rms_db(speech) - 25, (name, rms_db(before), rms_db(speech))
    # A live mix learns a voice's level as it speaks: matched after its first second.
    alice = mix[at(truth["alice"][0].start + 1.0) : at(truth["alice"][-1].end)]
    bob = mix[at(truth["bob"][0].start + 1.0) : at(truth["bob"][-1].end)]
    assert abs(rms_db(alice) - rms_db(bob)) < 3, (rms_db(alice), rms_db(bob))

    # The captions: a subtitle segment beside each audio one, words in their speaker's voice.
    subs = (live / hls.SUBS).read_text()
    assert listed(subs) == [n.replace(".ts", ".vtt") for n in names] and subs.rstrip().endswith("#EXT-X-ENDLIST")
    vtt = "".join((live / n).read_text() for n in listed(subs))
    assert "<v alice>The weather was lovely" in vtt and "<v bob>Our team finished" in vtt
    assert all("X-TIMESTAMP-MAP=MPEGTS:" in (live / n).read_text() for n in listed(subs))
    master_text = (live / hls.MASTER).read_text()
    assert "TYPE=SUBTITLES" in master_text and 'LANGUAGE="en"' in master_text


class MasterWatch(LocalBlobStore):
    """A local store that notes how many segments the audio playlist listed each time the master was stored."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.listed_at_master: list[int] = []

    def put(self, key: str, data: bytes, *, content_type: str | None = None, cache_control: str | None = None) -> None:
        if key == hls.key(SPACE, hls.MASTER):
            audio = hls.key(SPACE, hls.AUDIO)
            self.listed_at_master.append(len(listed(self.get(audio).decode())) if self.exists(audio) else 0)
        super().put(key, data, content_type=content_type, cache_control=cache_control)


def test_the_master_waits_for_a_playlist_a_player_can_start_on(tmp_path: Path) -> None:
    # The master is what makes hls_url: a page given it plays at once, and
    # Chromium fails a live playlist of fewer than three segments for good.
    blobs = MasterWatch(tmp_path / "blobs")
    clock = ManualClock()
    writer = LiveHls(blobs, SPACE, clock, clock0=0.0, options=HlsOptions(tick=0.01))
    writer.start()
    feed(writer, clock, until=5.0)  # two segments' worth
    wait_for(lambda: writer.published >= 2, 30)
    assert blobs.listed_at_master == []
    feed(writer, clock, until=9.0)
    wait_for(lambda: bool(blobs.listed_at_master), 30)
    writer.stop()
    assert len(blobs.listed_at_master) == 1 and blobs.listed_at_master[0] >= hls.LIVE_START_SEGMENTS


def test_a_space_too_short_to_go_live_still_has_its_instant_replay(tmp_path: Path) -> None:
    blobs = MasterWatch(tmp_path / "blobs")
    clock = ManualClock()
    writer = LiveHls(blobs, SPACE, clock, clock0=0.0, options=HlsOptions(tick=0.01))
    writer.start()
    feed(writer, clock, until=3.0)
    writer.stop()
    audio = blobs.get(hls.key(SPACE, hls.AUDIO)).decode()
    assert audio.rstrip().endswith("#EXT-X-ENDLIST") and len(listed(audio)) < hls.LIVE_START_SEGMENTS
    assert blobs.listed_at_master == [len(listed(audio))]


def test_s3_objects_carry_cache_headers(moto_server: MotoServer, s3_bucket: str) -> None:
    blob_store = S3BlobStore.from_settings(Settings(s3_bucket=s3_bucket, s3_endpoint_url=moto_server.endpoint))
    clock = ManualClock()
    writer = LiveHls(blob_store, SPACE, clock, clock0=0.0, options=HlsOptions(tick=0.01))
    writer.start()
    feed(writer, clock, until=7.0)
    deadline = time.monotonic() + 20
    while writer.published < 2 and time.monotonic() < deadline:
        time.sleep(0.05)

    def cache(name: str) -> tuple[str, str]:
        key = blob_store.prefix + hls.key(SPACE, name)
        head = blob_store.client.head_object(Bucket=blob_store.bucket, Key=key)
        return str(head.get("CacheControl")), str(head["ContentType"])

    assert cache(hls.AUDIO) == (hls.PLAYLIST_CACHE, hls.PLAYLIST_TYPE)
    writer.stop()
    assert cache("000000.ts") == (hls.SEGMENT_CACHE, "video/mp2t")
    assert cache("000000.vtt")[0] == hls.SEGMENT_CACHE
    assert cache(hls.AUDIO)[0] == hls.CLOSED_PLAYLIST_CACHE


def test_uploads_that_fail_are_retried_and_never_listed_before_stored(moto_server: MotoServer, s3_bucket: str) -> None:
    proxy = TcpProxy(int(moto_server.endpoint.rsplit(":", 1)[1]))
    with proxy.running():
        blobs = S3BlobStore.from_settings(Settings(s3_bucket=s3_bucket, s3_endpoint_url=proxy.endpoint))
        clock = ManualClock()
        writer = LiveHls(blobs, SPACE, clock, clock0=0.0, options=HlsOptions(tick=0.01))
        writer.start()
        feed(writer, clock, until=4.0, pace=0.005)
        proxy.cut()
        feed(writer, clock, until=9.0, pace=0.005)
        deadline = time.monotonic() + 30
        while writer.upload_failures == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        proxy.restore()
        feed(writer, clock, until=12.0, pace=0.005)
        writer.stop()
        audio = blobs.get(hls.key(SPACE, hls.AUDIO)).decode()
        names = listed(audio)
        assert writer.upload_failures > 0
        assert names == [hls.segment_name(i, "ts") for i in range(len(names))]
        assert all(blobs.exists(hls.key(SPACE, n)) for n in names)
        assert sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+),", audio)) == pytest.approx(12.0, abs=0.6)


_AGENT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from pathlib import Path
    from spaces.blobstore.local import LocalBlobStore
    from workers.hls import HlsOptions, LiveHls
    clock0 = float(sys.argv[2])
    writer = LiveHls(LocalBlobStore(Path(sys.argv[1])), "hlsspace", lambda: time.time() - clock0,
                     clock0=clock0, options=HlsOptions(tick=0.05))
    writer.start()
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(320) / 16000)).astype(np.float32)
    began = time.time() - clock0
    print(began, flush=True)  # when this writer's audio begins, on the room clock
    while True:
        writer.audio("alice", time.time() - clock0, tone)
        time.sleep(0.02)
        # "end" after this many seconds of its own audio, however long a loaded machine took to start it.
        if sys.argv[3] == "end" and time.time() - clock0 > began + float(sys.argv[4]):
            writer.stop()
            break
    """
)


def run_agent(root: Path, clock0: float, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.Popen(
        [sys.executable, "-c", _AGENT, str(root), str(clock0), *args], env=env, stdout=subprocess.PIPE
    )


def wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_writer_is_continued_after_a_discontinuity(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    blobs = LocalBlobStore(root)
    clock0 = time.time()
    audio_key = hls.key(SPACE, hls.AUDIO)

    def listed_now() -> list[str]:
        return listed(blobs.get(audio_key).decode()) if blobs.exists(audio_key) else []

    first = run_agent(root, clock0, "forever")
    try:
        wait_for(lambda: len(listed_now()) >= 3, 30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = {k: blobs.get(k) for k in blobs.list(hls.prefix(SPACE)) if k.endswith(".ts")}
    cut = time.time() - clock0
    second = run_agent(root, clock0, "end", "6")
    assert second.stdout is not None
    began = float(second.stdout.readline())
    assert second.wait(timeout=60) == 0

    audio = blobs.get(audio_key).decode()
    names = listed(audio)
    assert audio.count("#EXT-X-DISCONTINUITY\n") == 1 and audio.rstrip().endswith("#EXT-X-ENDLIST")
    seqs = [hls.segment_seq(n) or 0 for n in names]
    assert seqs == sorted(set(seqs))  # numbering goes on, never reused
    for key, data in before.items():
        assert blobs.get(key) == data  # nothing stored was overwritten
    playlist = hls.MediaPlaylist.parse(audio, ext="ts")
    resumed = next(e for e in playlist.entries if e.discontinuity)
    ended_before = max(e.start + e.duration for e in playlist.entries if e.seq < resumed.seq)
    # The gap is the restart's and no more: the new writer's playlist starts
    # with its first audio (however long a loaded machine took to start it),
    # and the kill lost at most the segment being made and its encoding.
    assert abs(resumed.start - began) < 1.0, (began, resumed.start)
    assert 0 <= cut - ended_before < 5, (ended_before, cut)
    assert sum(e.duration for e in playlist.entries if e.seq >= resumed.seq) == pytest.approx(6, abs=1.0)
    assert float(probe(root / hls.key(SPACE, hls.MASTER), "format=duration")["format"]["duration"]) > 8
