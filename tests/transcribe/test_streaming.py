"""Live transcription: local agreement on constructed words, then real speech fed in 20 ms chunks."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pytest
from faster_whisper import WhisperModel

from spaces.models import Caption, Word
from tests.speech import VOICES, synthesize, word_error_rate
from transcribe.agreement import HypothesisBuffer
from transcribe.audio import SAMPLE_RATE
from transcribe.model import encoder_window, load_model
from transcribe.streaming import StreamingOptions, StreamingTranscriber
from transcribe.transcribe import transcribe, transcribe_clip

CHUNK = 320  # 20 ms, one WebRTC packet
ORIGIN = 50.0  # room time of the first sample fed


def w(start: float, text: str) -> Word:
    return Word(start, start + 0.3, text, "alice")


# --- local agreement ----------------------------------------------------------------


def test_a_word_is_committed_once_two_passes_agree() -> None:
    buf = HypothesisBuffer()
    assert buf.insert([w(0.0, "Good"), w(0.4, "evening")]) == []
    assert [x.text for x in buf.tentative] == ["Good", "evening"]
    fresh = buf.insert([w(0.0, "Good"), w(0.4, "evening,"), w(0.8, "every")])
    assert [x.text for x in fresh] == ["Good", "evening,"]
    assert [x.text for x in buf.tentative] == ["every"]


def test_disagreement_stops_the_commit_at_the_first_differing_word() -> None:
    buf = HypothesisBuffer()
    buf.insert([w(0.0, "the"), w(0.4, "train"), w(0.8, "two")])
    fresh = buf.insert([w(0.0, "The"), w(0.4, "rain"), w(0.8, "two")])
    assert [x.text for x in fresh] == ["The"]
    assert [x.text for x in buf.committed] == ["The"]


def test_committed_words_are_never_taken_back_or_repeated() -> None:
    buf = HypothesisBuffer()
    buf.insert([w(0.0, "one"), w(0.4, "two")])
    buf.insert([w(0.0, "one"), w(0.4, "two"), w(0.8, "three")])
    # The next pass hears "two" again, starting a little earlier, and changes "one".
    fresh = buf.insert([w(0.0, "won"), w(0.35, "two"), w(0.8, "three"), w(1.2, "four")])
    assert [x.text for x in buf.committed] == ["one", "two", "three"]
    assert [x.text for x in fresh] == ["three"]
    assert [x.text for x in buf.tentative] == ["four"]


# --- real speech ----------------------------------------------------------------------

LONG = "I read a wonderful book about the history of the ocean and the ships that crossed it."
SHORT = "Thanks, that sounds great."
LONG_TALK = (
    "The weather was lovely this morning, so we walked down to the river.",
    "Our team finished the project two weeks ahead of schedule.",
    "Please remember to bring your notebook to the meeting tomorrow.",
    "We should probably order more coffee for the office kitchen.",
)


@dataclass(frozen=True)
class Fed:
    events: list[tuple[float, Caption]]
    """(room time of the stream's end when the event came out, event)"""
    truth: list[tuple[float, float, str]]
    """(room start, room end, text) of each utterance"""
    transcriber: StreamingTranscriber
    passes: list[float]
    """Seconds spent in Whisper passes by the ``process_iter`` call that gave each event."""
    offline: list[Word]
    """The same audio through the offline pipeline's transcription."""


@pytest.fixture(scope="module")
def fed(model: WhisperModel) -> Fed:
    """Silence, a long sentence, a pause, a short answer, silence: fed as a live agent would."""
    voice = VOICES[0]
    long, short = synthesize(LONG, voice), synthesize(SHORT, voice)
    parts, truth, t = [], [], 0.0
    for gap, speech, text in ((3.0, long, LONG), (2.0, short, SHORT)):
        parts.append(np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32))
        t += gap
        truth.append((ORIGIN + t, ORIGIN + t + speech.duration, text))
        parts.append(speech.samples.astype(np.float32))
        t += speech.duration
    parts.append(np.zeros(3 * SAMPLE_RATE, dtype=np.float32))
    audio = np.concatenate(parts)
    live = StreamingTranscriber(model, speaker="alice", options=StreamingOptions(max_load=1.0))
    events: list[tuple[float, Caption]] = []
    passes: list[float] = []
    for i in range(0, len(audio), CHUNK):
        live.insert_audio_chunk(audio[i : i + CHUNK], ORIGIN + i / SAMPLE_RATE)
        busy = live.busy_seconds
        for e in live.process_iter():
            events.append((live.end_time or 0.0, e))
            passes.append(live.busy_seconds - busy)
    busy = live.busy_seconds
    for e in live.finish():
        events.append((live.end_time or 0.0, e))
        passes.append(live.busy_seconds - busy)
    return Fed(events, truth, live, passes, transcribe(model, audio, speaker="alice", offset=ORIGIN))


def test_each_utterance_ends_in_one_final_caption_as_good_as_the_offline_words(fed: Fed) -> None:
    finals = [e for _, e in fed.events if e.final]
    assert len(finals) == 2, [e.text for e in finals]
    truth = " ".join(text for _, _, text in fed.truth)
    live_wer = word_error_rate(truth, " ".join(e.text for e in finals))
    offline_wer = word_error_rate(truth, fed.offline)
    # The bound is 1.3x the offline WER; one extra word of slack on two sentences.
    assert live_wer <= 1.3 * offline_wer + 1 / len(truth.split()), (live_wer, offline_wer)
    for final, (start, end, _) in zip(finals, fed.truth, strict=True):
        assert final.speaker == "alice"
        assert abs(final.start - start) < 0.5
        assert abs(final.end - end) < 0.6
        assert all(start - 0.5 < x.start < end + 0.5 for x in final.words)


def test_the_final_comes_soon_after_the_speech_ends(fed: Fed) -> None:
    """Measured in fed audio, not wall time: end of speech + silence to end it + one frame."""
    finals = [(at, e) for at, e in fed.events if e.final]
    for (at, _), (_, end, _) in zip(finals, fed.truth, strict=True):
        assert at - end <= StreamingOptions().end_silence + StreamingOptions().pad + 0.1


def test_the_final_pass_runs_in_the_silence_before_the_utterance_is_over(fed: Fed) -> None:
    """When the VAD is sure the speech ended, the final's words are there: it goes out with no pass to wait for."""
    finals = [i for i, (_, e) in enumerate(fed.events) if e.final]
    assert [fed.passes[i] for i in finals] == [0.0, 0.0]


def test_interim_text_shows_while_the_long_sentence_is_still_spoken(fed: Fed) -> None:
    start, end, _ = fed.truth[0]
    interims = [(at, e) for at, e in fed.events if not e.final and e.utterance == 0]
    assert interims, "no interim caption for a 5 s sentence"
    first_at, first = interims[0]
    assert first_at < end - 1.0, f"first interim only at {first_at - start:.1f} s into the sentence"
    # Interims of one utterance grow: each later one starts with the committed words of the earlier ones.
    texts = [e.text for _, e in interims]
    assert len(texts[-1].split()) >= len(texts[0].split())
    assert all(e.seq < f.seq for (_, e), (_, f) in zip(fed.events, fed.events[1:], strict=False))


def test_silence_costs_no_whisper_pass(model: WhisperModel) -> None:
    live = StreamingTranscriber(model, speaker="bob")
    rng = np.random.default_rng(7)
    quiet = (rng.standard_normal(10 * SAMPLE_RATE) * 1e-4).astype(np.float32)  # -80 dBFS of hiss
    for i in range(0, len(quiet), CHUNK):
        live.insert_audio_chunk(quiet[i : i + CHUNK], 10.0 + i / SAMPLE_RATE)
        assert live.process_iter() == []
    assert live.finish() == []
    assert live.busy_seconds == 0.0


def test_a_gap_in_the_stream_keeps_words_on_the_room_clock(model: WhisperModel) -> None:
    """Packets lost for two seconds: the next chunk's room time is honoured, not its position."""
    speech = synthesize(SHORT, VOICES[1])
    live = StreamingTranscriber(model, speaker="bob")
    live.insert_audio_chunk(np.zeros(SAMPLE_RATE, dtype=np.float32), 20.0)
    live.process_iter()
    live.insert_audio_chunk(speech.samples.astype(np.float32), 23.0)
    live.insert_audio_chunk(np.zeros(SAMPLE_RATE, dtype=np.float32), 23.0 + speech.duration)
    events = live.process_iter() + live.finish()
    finals = [e for e in events if e.final]
    assert len(finals) == 1
    assert abs(finals[0].start - 23.0) < 0.4


def _finals(live: StreamingTranscriber, audio: np.ndarray) -> list[Caption]:
    events: list[Caption] = []
    for i in range(0, len(audio), CHUNK):
        live.insert_audio_chunk(audio[i : i + CHUNK], ORIGIN + i / SAMPLE_RATE)
        events += live.process_iter()
    return [e for e in [*events, *live.finish()] if e.final]


def test_the_final_pass_runs_on_the_final_model(model: WhisperModel) -> None:
    """SPACES_LIVE_FINAL_MODEL: interim passes on the fast model, the text that stays from the accurate one."""
    base = load_model("base")
    speech = synthesize(LONG, VOICES[0])
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = np.concatenate([silence, speech.samples.astype(np.float32), silence])
    hybrid = _finals(StreamingTranscriber(model, speaker="alice", final_model=base), audio)
    accurate = _finals(StreamingTranscriber(base, speaker="alice"), audio)
    # Utterances are cut by the VAD and the final pass decodes deterministically: the same words.
    assert [(e.text, e.start, e.end) for e in hybrid] == [(e.text, e.start, e.end) for e in accurate]
    assert word_error_rate(LONG, " ".join(e.text for e in hybrid)) <= 0.25  # the sentence, give or take 4 words


# --- what a pass hears ----------------------------------------------------------------


def test_a_short_clip_s_pass_encodes_a_shorter_window_for_the_same_words(model: WhisperModel) -> None:
    speech = synthesize(LONG, VOICES[1])
    audio = np.concatenate([np.zeros(SAMPLE_RATE // 4, dtype=np.float32), speech.samples.astype(np.float32)])
    audio = np.concatenate([audio, np.zeros(SAMPLE_RATE // 2, dtype=np.float32)])
    seconds = len(audio) / SAMPLE_RATE

    def words_and_cpu() -> tuple[str, float]:
        began = time.process_time()
        words = transcribe_clip(model, audio, start=0.0, end=seconds, speaker="bob", offset=0.0)
        return " ".join(x.text for x in words), time.process_time() - began

    words_and_cpu()  # warm
    full, full_cpu = words_and_cpu()
    with encoder_window(model, seconds):
        short, short_cpu = words_and_cpu()
    assert word_error_rate(LONG, short) <= word_error_rate(LONG, full) + 0.1, (short, full)
    # The encoder is most of a pass: a 10 s window costs about a third of Whisper's 30 s.
    assert short_cpu < 0.75 * full_cpu, (short_cpu, full_cpu)


def test_a_long_utterance_s_interim_passes_hear_only_its_uncommitted_tail(
    model: WhisperModel, caplog: pytest.LogCaptureFixture
) -> None:
    """Four sentences with short pauses: one 15 s utterance; its interim passes hear about a window, its final all."""
    voice = VOICES[0]
    pause = np.zeros(int(0.25 * SAMPLE_RATE), dtype=np.float32)
    parts = [np.zeros(SAMPLE_RATE, dtype=np.float32)]
    for text in LONG_TALK:
        parts += [synthesize(text, voice).samples.astype(np.float32), pause]
    parts.append(np.zeros(2 * SAMPLE_RATE, dtype=np.float32))
    audio = np.concatenate(parts)
    # No final pass started early in the pauses: every pass but the last is an interim one.
    options = StreamingOptions(max_load=1.0, closing_pad=StreamingOptions().end_silence)
    live = StreamingTranscriber(model, speaker="alice", options=options)
    events: list[Caption] = []
    caplog.set_level(logging.INFO, logger="faster_whisper")
    for i in range(0, len(audio), CHUNK):
        live.insert_audio_chunk(audio[i : i + CHUNK], ORIGIN + i / SAMPLE_RATE)
        events.extend(live.process_iter())
    events.extend(live.finish())
    heard = [_duration(r.getMessage()) for r in caplog.records if "Processing audio with duration" in r.getMessage()]
    finals = [e for e in events if e.final]
    assert len(finals) == 1
    utterance = finals[0].end - finals[0].start
    assert utterance > 12.0
    # The last pass is the final's, over all of it; the interims before it never heard much more than the window.
    assert heard[-1] >= utterance
    assert max(heard[:-1]) <= options.window + 2 * options.interval + 1.0, heard
    truth = " ".join(LONG_TALK)
    assert word_error_rate(truth, finals[0].text) <= 0.25, finals[0].text
    # The interim text still covers the whole utterance: words committed before a pass's start stay shown.
    last_interim = [e for e in events if not e.final][-1]
    assert word_error_rate(truth, last_interim.text) <= 0.4, last_interim.text


def _duration(message: str) -> float:
    minutes, seconds = message.rsplit(" ", 1)[1].split(":")
    return int(minutes) * 60 + float(seconds)
