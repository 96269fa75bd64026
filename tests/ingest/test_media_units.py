"""Units of the recording path: Opus framing, Ogg pages, the room clock, the recorder."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import opus
from ingest.oggwriter import OggOpusWriter, build_page, iter_packets, iter_pages, repair, scan
from ingest.recorder import RecorderOptions, TrackRecorder
from ingest.spool import SegmentMeta, SpaceSpool
from ingest.timeline import RoomAnchor, TimestampUnwrapper
from spaces.models import Segment, Track
from tests.ingest.audio import decode_ogg, low, misplaced_segments, opus_packets
from tests.support.sfu import VOICE_A, speech48k

# --- Opus framing ------------------------------------------------------------------


def test_packet_samples_from_toc() -> None:
    assert opus.packet_samples(bytes([31 << 3])) == 960  # CELT FB 20 ms
    assert opus.packet_samples(bytes([(1 << 3) | 1, 0])) == 1920  # SILK NB 20 ms, two frames
    assert opus.packet_samples(bytes([(3 << 3) | 3, 2])) == 5760  # SILK 60 ms x 2 = 120 ms
    assert opus.packet_samples(bytes([(3 << 3) | 3, 3])) == 0  # 180 ms: not Opus
    assert opus.packet_samples(b"") == 0
    assert opus.packet_samples(bytes([3])) == 0  # code 3 without a count byte
    assert all(opus.packet_samples(p) == 960 for p in opus_packets(0.2))


@pytest.mark.parametrize("gap", [120, 960, 2040, 48000])
def test_silence_covers_a_gap_exactly(gap: int) -> None:
    assert sum(opus.packet_samples(p) for p in opus.silence(gap)) == gap


@given(st.binary(max_size=8))
def test_packet_samples_never_fails(data: bytes) -> None:
    assert 0 <= opus.packet_samples(data) <= opus.MAX_PACKET_SAMPLES


# --- Ogg ----------------------------------------------------------------------------


def test_writer_output_plays_and_scans(tmp_path: Path) -> None:
    path = tmp_path / "a.ogg"
    packets = opus_packets(1.0)
    writer = OggOpusWriter(path, serial=7, channels=1, comments={"ROOM_OFFSET": "1.5"}, page_packets=10)
    for p in packets:
        writer.write(p, opus.packet_samples(p))
    writer.close()
    data = path.read_bytes()
    result = scan(data)
    assert not result.truncated and result.audio_packets == len(packets) and result.channels == 1
    assert result.comments["ROOM_OFFSET"] == "1.5"
    assert result.audio_samples == 48000
    assert len(decode_ogg(data)) == 48000
    assert list(iter_packets(list(iter_pages(data))))[2:] == packets


def test_killed_writer_leaves_a_playable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "k.ogg"
    writer = OggOpusWriter(path, serial=1, channels=1, comments={}, page_packets=5)
    for p in opus_packets(1.0)[:23]:
        writer.write(p, 960)
    writer.abandon()  # as after SIGKILL: pending packets (3) never written
    with path.open("ab") as f:
        f.write(b"OggS\x00\x00garbage-half-page")  # and a torn page at the end
    result = repair(path)
    assert result.audio_packets == 20 and result.audio_samples == 20 * 960
    assert not scan(path.read_bytes()).truncated
    assert len(decode_ogg(path.read_bytes())) == 20 * 960


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000), st.integers(min_value=0, max_value=4000))
def test_scan_survives_any_bytes(noise: bytes, cut: int) -> None:
    page = build_page([b"OpusHead" + bytes(11)], serial=1, sequence=0, granule=0, flags=2)
    for data in (noise, page + noise, (page + page)[:cut]):
        result = scan(data)
        assert 0 <= result.valid_bytes <= len(data)


# --- the room clock -------------------------------------------------------------------


def test_unwrap_across_wrap_and_reordering() -> None:
    u = TimestampUnwrapper()
    assert u.unwrap(0xFFFFFC40) == 0xFFFFFC40
    assert u.unwrap(0x00000000) == 1 << 32
    assert u.unwrap(0xFFFFFC40) == 0xFFFFFC40  # late packet from before the wrap
    assert u.unwrap(960) == (1 << 32) + 960


def test_anchor_takes_least_delayed_packet_and_ignores_jitter() -> None:
    anchor = RoomAnchor(0, 10.050)  # first packet 50 ms late
    for i in range(1, 50):
        anchor.observe(i * 960, 10.0 + i * 0.02 + (0.03 if i % 3 else 0.0))
    assert anchor.rebase() == pytest.approx(-0.05)
    assert anchor.to_room(0) == pytest.approx(10.0)
    anchor.observe(100 * 960, 12.0 + 0.002)  # 2 ms of jitter: inside the dead band
    assert anchor.rebase() == 0.0


# --- the recorder ----------------------------------------------------------------------


def test_recorder_segments_gaps_and_reordering(tmp_path: Path) -> None:
    spool = SpaceSpool(tmp_path, "space1")
    closed: list[SegmentMeta] = []
    rec = TrackRecorder(
        spool,
        track_id="00-a",
        speaker="a",
        options=RecorderOptions(segment_seconds=1.0, fill_limit_seconds=0.5),
        on_closed=closed.append,
    )
    packets = opus_packets(3.0)
    ts0, arrival0 = 123_456, 5.0
    order = list(range(100))
    order[10], order[11] = order[11], order[10]  # reordered pair
    del order[40:45]  # 100 ms lost: filled with silence
    order = [i for i in order if not 70 <= i < 120]  # 1 s gap: a new segment
    for i in order:
        rec.write(ssrc=1, timestamp=ts0 + i * 960, payload=packets[i], arrival=arrival0 + i * 0.02)
    for i in range(120, 150):
        rec.write(ssrc=1, timestamp=ts0 + i * 960, payload=packets[i], arrival=arrival0 + i * 0.02)
    rec.close()
    offsets = [round(m.offset, 3) for m in closed]
    durations = [round(m.duration, 3) for m in closed]
    assert offsets == [5.0, 6.0, 7.4] and durations == [1.0, 0.4, 0.6]
    for m in closed:
        data = spool.segment_audio("00-a", m.seq).read_bytes()
        assert len(decode_ogg(data)) == round(m.duration * 48000)
        assert json.loads(spool.segment_meta_path("00-a", m.seq).read_text())["closed"]
    # A new RTP stream (rejoin) starts its own timeline on the same track.
    rec.write(ssrc=2, timestamp=99, payload=packets[0], arrival=20.0)
    rec.close()
    assert closed[-1].seq == 3 and closed[-1].offset == pytest.approx(20.0)


def test_decode_of_stereo_segment(tmp_path: Path) -> None:
    path = tmp_path / "s.ogg"
    writer = OggOpusWriter(path, serial=3, channels=2, comments={})
    for p in opus_packets(0.4, channels=2):
        assert opus.is_stereo(p)
        writer.write(p, 960)
    writer.close()
    with av.open(io.BytesIO(path.read_bytes())) as c:
        assert c.streams.audio[0].codec_context.channels == 2


# --- the live tests' own diagnosis -------------------------------------------------


def _ogg(samples: np.ndarray) -> bytes:
    """48 kHz mono int16 as an Ogg/Opus file (libopus, as a browser codes it)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def test_misplaced_segments_names_the_one_that_moved() -> None:
    speech = speech48k("The weather was lovely this morning, so we walked down to the river.", VOICE_A)
    half = len(speech) // 2
    data = {0: _ogg(speech[:half]), 1: _ogg(speech[half:])}
    at = 1.0 + half / 48000
    track = Track("t", "alice", (Segment(0, "a", 1.0, half / 48000), Segment(1, "b", at + 0.05, half / 48000)))
    (moved,) = misplaced_segments(track, data, low(speech), 1.0)
    seq, seconds, score = moved
    assert seq == 1
    # Opus's own delay (6.5 ms of pre-skip, as decoded here) aside, the 50 ms it was moved.
    assert seconds == pytest.approx(-0.05, abs=0.01)
    assert score > 0.8
