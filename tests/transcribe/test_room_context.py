"""The room's recent finals as a final pass's context: which ones it hears, and that only its own words come out."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from faster_whisper import WhisperModel

from spaces.models import Caption, Word
from tests.speech import VOICES, synthesize, word_error_rate
from transcribe.audio import SAMPLE_RATE
from transcribe.room_context import Heard, RoomContext
from transcribe.streaming import StreamingOptions, StreamingTranscriber

CHUNK = 320  # 20 ms, one WebRTC packet
ORIGIN = 30.0


def heard(speaker: str, start: float, seconds: float, text: str) -> Heard:
    """A final of ``seconds`` of audio: 0.4 s of padding, its words evenly over the rest, 0.4 s of padding."""
    said = text.split()
    step = (seconds - 0.8) / len(said)
    words = tuple(Word(start + 0.4 + step * i, start + 0.4 + step * (i + 1), t, speaker) for i, t in enumerate(said))
    return Heard(speaker, start, np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32), words)


def test_the_context_is_the_newest_finals_that_fit_and_the_prompt_what_was_said_before() -> None:
    room = RoomContext()
    for h in (
        heard("alice", 0.0, 3.0, "one two"),
        heard("bob", 4.0, 3.0, "three four"),
        heard("alice", 8.0, 3.0, "five six"),
        heard("bob", 12.0, 4.0, "seven eight"),  # still talking at 14.0: heard over the utterance there
    ):
        room.add(h)
    context = room.before(14.0, 7.0)
    assert [h.words[0].text for h in context.audio] == ["three", "five"]  # two whole ones, oldest first
    assert [h.start for h in context.audio] == [4.0, 8.0]
    assert context.prompt == "one two"
    # The newest one alone is too long: cut at the start of a word ("six", 9.5 s), the words before it prompt.
    cut = room.before(14.0, 2.0)
    assert [[w.text for w in h.words] for h in cut.audio] == [["six"]]
    assert cut.audio[0].start == pytest.approx(9.4) and cut.audio[0].end == pytest.approx(11.0)
    assert cut.prompt == "one two three four five"
    assert room.prompt() == "one two three four five six seven eight"
    # A quick reply: bob's final's trailing padding runs 0.2 s into it, his words do not.
    quick = room.before(15.8, 5.0)
    assert [h.words[0].text for h in quick.audio] == ["seven"]
    assert len(quick.audio[0].audio) == int(3.8 * SAMPLE_RATE)
    assert quick.prompt == "one two three four five six"


def _feed(live: dict[str, StreamingTranscriber], tracks: dict[str, np.ndarray]) -> list[Caption]:
    """Both speakers' tracks in room order, 20 ms at a time, as the agent's threads take them."""
    events: list[Caption] = []
    for i in range(0, min(len(t) for t in tracks.values()), CHUNK):
        for speaker, t in live.items():
            t.insert_audio_chunk(tracks[speaker][i : i + CHUNK], ORIGIN + i / SAMPLE_RATE)
            events += t.process_iter()
    for t in live.values():
        events += t.finish()
    return [e for e in events if e.final]


def test_a_final_pass_hears_the_room_before_its_utterance_and_keeps_only_the_utterance_s_words(
    model: WhisperModel, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = "The weather was lovely this morning, so we walked down to the river.", "Thanks, that sounds great."
    a, b = synthesize(first, VOICES[0]), synthesize(second, VOICES[1])
    length = int((1.0 + a.duration + 1.5 + b.duration + 1.5) * SAMPLE_RATE)
    tracks = {s: np.zeros(length, dtype=np.float32) for s in ("alice", "bob")}
    a_at, b_at = SAMPLE_RATE, int((1.0 + a.duration + 1.5) * SAMPLE_RATE)
    tracks["alice"][a_at : a_at + len(a.samples)] = a.samples
    tracks["bob"][b_at : b_at + len(b.samples)] = b.samples
    room = RoomContext()
    # No interim passes: every pass logged is a final one.
    options = StreamingOptions(interval=1e9, final_context=8.0)
    live = {s: StreamingTranscriber(model, speaker=s, options=options, room=room) for s in tracks}
    caplog.set_level(logging.INFO, logger="faster_whisper")
    finals = _feed(live, tracks)
    heard = [_duration(r.getMessage()) for r in caplog.records if "Processing audio with duration" in r.getMessage()]

    assert [f.speaker for f in finals] == ["alice", "bob"]
    bob = finals[1]
    # bob's final pass heard alice's sentence first (the first pass, alice's, had no context)...
    assert heard[-1] >= a.duration + b.duration, heard
    # ...and none of it came out as bob's: his own words only, on the room clock.
    start, end = ORIGIN + b_at / SAMPLE_RATE, ORIGIN + b_at / SAMPLE_RATE + b.duration
    assert word_error_rate(second, bob.text) <= 0.25, bob.text
    assert all(start - 0.3 <= w.start and w.end <= end + 0.5 for w in bob.words), bob.words
    assert abs(bob.start - start) < 0.4 and abs(bob.end - end) < 0.5
    # The context is heard, never said: the room keeps one final per utterance, alice's words under alice.
    assert room.prompt() == " ".join([finals[0].text, bob.text])


def _duration(message: str) -> float:
    minutes, seconds = message.rsplit(" ", 1)[1].split(":")
    return int(minutes) * 60 + float(seconds)
