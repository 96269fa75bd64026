"""The live HLS's encoder: the live mix in, MPEG-TS segments of AAC out, from one ffmpeg for the whole run.

One encoder for the run, so no priming gap at each segment's start;
``workers.hls.LiveHls`` feeds it and publishes what it finishes.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import av
import numpy as np

from spaces import hls
from workers.livemix import RATE

log = logging.getLogger(__name__)

#: AAC bitrate: speech at 16 kHz.
BITRATE = 48_000
#: The MPEG-TS rate every segment is padded to (AAC plus its PES and TS headers fit under it).
MUXRATE = 64_000
CODECS = "mp4a.40.2"
#: MPEG-TS timestamps count at this rate.
TS_CLOCK = 90_000


class SegmentEncoder:
    """One ffmpeg: s16le PCM in, MPEG-TS segments of AAC in a local directory out."""

    def __init__(self, workdir: Path, *, first_seq: int, segment_seconds: float) -> None:
        self.workdir = workdir
        self.first_seq = first_seq
        self._local = workdir / "local.m3u8"
        self._seen = 0
        self._log = (workdir / "ffmpeg.log").open("wb")
        self.process = subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-f",
                "s16le",
                "-ar",
                str(RATE),
                "-ac",
                "1",
                "-i",
                "pipe:0",
                "-c:a",
                "aac",
                "-b:a",
                str(BITRATE),
                # FFmpeg's fast quantizer search, as the replay's AAC (spaces.formats): at this bit
                # rate, on the bench's seven-speaker mix, a quarter of the default twoloop's CPU
                # (0.29 against 1.22 s for 90 s) and nearer the mix (wideband PESQ 4.34 against 3.59).
                "-aac_coder",
                "fast",
                # Timestamps from 0, as the playlist's timeline counts: players drop
                # what lies outside where the playlist says a segment is (Chromium's
                # live HLS shows nothing), so no room-clock offset and none of the
                # muxer's default 1.4 s either. The room time is in each segment's tag.
                "-muxdelay",
                "0",
                "-muxpreload",
                "0",
                "-f",
                "hls",
                "-hls_time",
                f"{segment_seconds:g}",
                "-hls_list_size",
                "0",
                "-hls_segment_type",
                "mpegts",
                # Constant-rate TS, padded: a segment of silence would otherwise be a few
                # hundred bytes, too few for a demuxer to recognise (Chromium's refuses it).
                "-hls_ts_options",
                f"muxrate={MUXRATE}",
                "-start_number",
                str(first_seq),
                "-hls_flags",
                "temp_file",
                "-hls_segment_filename",
                str(workdir / "%06d.ts"),
                str(self._local),
            ],
            stdin=subprocess.PIPE,
            stderr=self._log,
        )

    def write(self, samples: np.ndarray) -> None:
        assert self.process.stdin is not None
        pcm = (samples * 32767).astype("<i2")
        self.process.stdin.write(pcm.tobytes())
        self.process.stdin.flush()

    def finished(self) -> list[tuple[int, float, Path]]:
        """Segments ffmpeg has completed since the last call: (seq, duration, file)."""
        try:
            text = self._local.read_text()
        except FileNotFoundError:
            return []
        listed = hls.MediaPlaylist.parse(text, ext="ts").entries
        new = listed[self._seen :]
        self._seen = len(listed)
        return [(e.seq, e.duration, self.workdir / hls.segment_name(e.seq, "ts")) for e in new]

    def close(self) -> list[tuple[int, float, Path]]:
        """End the input, wait for the last segment, return what was still to come."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        self.process.wait()
        self._log.close()
        if self.process.returncode != 0:
            log.error("ffmpeg ended with %s: %s", self.process.returncode, self.errors())
        return self.finished()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._log.close()

    def errors(self) -> str:
        return (self.workdir / "ffmpeg.log").read_text(errors="replace")[-500:]


def first_pts(path: Path) -> int | None:
    """The MPEG-TS time (90 kHz) of a segment's first audio packet, if it has one."""
    try:
        # Named, not probed: a segment of silence is too small to be recognised.
        with av.open(str(path), format="mpegts") as container:
            stream = container.streams.audio[0]
            for packet in container.demux(stream):
                if packet.pts is not None and packet.time_base is not None:
                    return round(packet.pts * packet.time_base * TS_CLOCK)
    except (av.FFmpegError, IndexError) as e:
        log.warning("segment %s unreadable: %s", path.name, e)
    return None
