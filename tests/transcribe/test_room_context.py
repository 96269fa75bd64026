"""The room's recent finals as a final pass's context: which ones it hears, and that only its own words come out."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace

import numpy as np
import pytest
from faster_whisper import WhisperModel

from spaces.models import Caption, Word, join_words
from tests.speech import VOICES, synthesize, word_error_rate
from transcribe.audio import SAMPLE_RATE
from transcribe.exceptions import DecodeFailed
from transcribe.room_context import Heard, RoomContext
from transcribe.streaming import StreamingOptions, StreamingTranscriber
from transcribe.transcribe import TranscribeOptions, transcribe_clip

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


FIRST = "The weather was lovely this morning, so we walked down to the river."
SECOND = "Thanks, that sounds great."


@dataclass(frozen=True)
class Exchange:
    """alice says FIRST, then bob SECOND, each on their own track; where and how long, in samples and seconds."""

    tracks: dict[str, np.ndarray]
    first: float
    second: float
    bob_at: int


@pytest.fixture(scope="module")
def exchange() -> Exchange:
    a, b = synthesize(FIRST, VOICES[0]), synthesize(SECOND, VOICES[1])
    length = int((1.0 + a.duration + 1.5 + b.duration + 1.5) * SAMPLE_RATE)
    tracks = {s: np.zeros(length, dtype=np.float32) for s in ("alice", "bob")}
    a_at, b_at = SAMPLE_RATE, int((1.0 + a.duration + 1.5) * SAMPLE_RATE)
    tracks["alice"][a_at : a_at + len(a.samples)] = a.samples
    tracks["bob"][b_at : b_at + len(b.samples)] = b.samples
    return Exchange(tracks, a.duration, b.duration, b_at)


def _finals_and_passes(
    model: WhisperModel, exchange: Exchange, options: StreamingOptions, caplog: pytest.LogCaptureFixture
) -> tuple[list[Caption], list[float], RoomContext]:
    """The finals of both speakers sharing a room, and the seconds each Whisper pass heard, in order."""
    room = RoomContext()
    live = {s: StreamingTranscriber(model, speaker=s, options=options, room=room) for s in exchange.tracks}
    caplog.set_level(logging.INFO, logger="faster_whisper")
    finals = _feed(live, exchange.tracks)
    heard = [_duration(r.getMessage()) for r in caplog.records if "Processing audio with duration" in r.getMessage()]
    return finals, heard, room


def test_a_final_pass_hears_the_room_before_its_utterance_and_keeps_only_the_utterance_s_words(
    model: WhisperModel, exchange: Exchange, caplog: pytest.LogCaptureFixture
) -> None:
    # No interim passes: every pass logged is a final one.
    finals, heard, room = _finals_and_passes(model, exchange, StreamingOptions(interval=1e9, final_context=8.0), caplog)

    assert [f.speaker for f in finals] == ["alice", "bob"]
    bob = finals[1]
    # bob's final pass heard alice's sentence first (the first pass, alice's, had no context)...
    assert heard[-1] >= exchange.first + exchange.second, heard
    # ...and none of it came out as bob's: his own words only, on the room clock.
    start = ORIGIN + exchange.bob_at / SAMPLE_RATE
    end = start + exchange.second
    assert word_error_rate(SECOND, bob.text) <= 0.25, bob.text
    assert all(start - 0.3 <= w.start and w.end <= end + 0.5 for w in bob.words), bob.words
    assert abs(bob.start - start) < 0.4 and abs(bob.end - end) < 0.5
    # The context is heard, never said: the room keeps one final per utterance, alice's words under alice.
    assert room.prompt() == " ".join([finals[0].text, bob.text])


def test_a_final_pass_with_the_room_that_fails_whisper_s_thresholds_hears_its_utterance_alone(
    model: WhisperModel, exchange: Exchange, caplog: pytest.LogCaptureFixture
) -> None:
    # No decode is probable enough for this threshold: every one fails, as a garbled one would. One
    # temperature: the utterance heard alone then decodes as it would have without the room.
    strict = TranscribeOptions(log_prob_threshold=0.0, temperatures=(0.0,))
    options = StreamingOptions(interval=1e9, final_context=8.0, final_whisper=strict)
    finals, heard, _ = _finals_and_passes(model, exchange, options, caplog)

    assert [f.speaker for f in finals] == ["alice", "bob"]
    # bob's pass over the room and his utterance failed, and raised...
    assert heard[-2] >= exchange.first + exchange.second, heard
    # ...so his utterance was heard alone: his final is the one he would have had without the room.
    assert heard[-1] < exchange.second + 1.5, heard
    alone, _, _ = _finals_and_passes(model, exchange, replace(options, final_context=0.0), caplog)
    assert finals[1].words == alone[1].words
    assert word_error_rate(SECOND, finals[1].text) <= 0.5, finals[1].text  # tiny.en: "Thanks, my sound is great."


def test_with_fallback_off_a_decode_failing_the_thresholds_raises_and_one_passing_them_does_not(
    model: WhisperModel, exchange: Exchange
) -> None:
    alice = exchange.tracks["alice"][SAMPLE_RATE // 2 :]  # her sentence from 0.5 s on
    clip = functools.partial(
        transcribe_clip, model, alice, start=0.0, end=exchange.first + 1.0, speaker="alice", offset=0.0
    )
    # A decode that passes them: the words fallback would have given.
    said = clip(options=TranscribeOptions())
    # At most three words of thirteen: on some CPUs tiny.en hears her first words "The weather" as "But
    # when there" (as on her own track in test_room's bleed test), elsewhere it hears them right.
    assert word_error_rate(FIRST, join_words(w.text for w in said)) <= 0.25, said
    assert clip(options=TranscribeOptions(fallback=False)) == said
    with pytest.raises(DecodeFailed):
        clip(options=TranscribeOptions(fallback=False, log_prob_threshold=0.0))


def _duration(message: str) -> float:
    minutes, seconds = message.rsplit(" ", 1)[1].split(":")
    return int(minutes) * 60 + float(seconds)
