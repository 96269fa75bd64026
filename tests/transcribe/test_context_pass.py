"""Context across speakers: the room's preceding text as the prompt."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import WhisperModel

from spaces.models import Word
from tests.speech import SAMPLE_RATE, VOICES, Utterance, build_space, word_error_rate
from transcribe.assemble import TrackWords
from transcribe.audio import decode
from transcribe.context_pass import (
    Clip,
    ContextRules,
    RoomPrompt,
    accept_redo,
    clips_from_bytes,
    clips_to_bytes,
    context_clips,
    refine_room,
    unsure_utterances,
)
from transcribe.transcribe import transcribe


def say(speaker: str, start: float, text: str) -> list[Word]:
    return [Word(start + 0.4 * i, start + 0.4 * i + 0.3, t, speaker) for i, t in enumerate(text.split())]


def test_room_prompt_is_the_recent_text_of_every_speaker() -> None:
    room = (
        say("alice", 0.0, "Welcome to cards night.")
        + say("bob", 2.0, "Thanks!")
        + say("alice", 100.0, "Which card did you draw?")
    )
    prompt = RoomPrompt(room, window=30.0)
    assert prompt(3.0) == "Welcome to cards night. Thanks!"
    assert prompt(103.0) == "Which card did you draw?"  # older text is out of the window
    assert prompt(50.0) is None
    assert prompt(0.0) is None
    assert RoomPrompt(room, max_chars=12)(3.0) == "Thanks!"  # whole words only


def test_unsure_utterances_merged_into_clips() -> None:
    def unsure(start: float, text: str, p: float = 0.5) -> list[Word]:
        return [Word(w.start, w.end, w.text, w.speaker, p) for w in say("bob", start, text)]

    words = (
        say("bob", 0.0, "I have been thinking about this for a long time now")  # sure
        + unsure(10.0, "The ten of clubs.")
        + unsure(13.6, "yes")  # 2 s after: merged with the answer before
        + say("bob", 20.0, "Six players.")  # Whisper was sure
        + unsure(30.0, "Fish and chips.")
        + unsure(40.0, " ".join(["word"] * 80))  # too long for one window
    )
    ranges = unsure_utterances(words, ContextRules(max_confidence=0.85, merge_gap=3.0, max_utterance=28.0))
    assert [" ".join(w.text for w in words[i:j]) for i, j in ranges] == [
        "The ten of clubs. yes",
        "Fish and chips.",
    ]
    after_pause = unsure_utterances(words, ContextRules(min_pause=5.0))
    assert [" ".join(w.text for w in words[i:j]) for i, j in after_pause] == ["The ten of clubs.", "Fish and chips."]


def test_a_redo_never_drops_a_word_the_first_pass_heard_surely() -> None:
    """Seen live: a short answer's leading number, heard surely, gone from the redo."""

    def bob(start: float, text: str, p: float) -> Word:
        return Word(start, start + 0.3, text, "bob", p)

    first = [bob(10.0, "Seven", 0.9), bob(10.4, "of", 0.3), bob(10.8, "clubs.", 0.45)]  # mean 0.55: redone
    # Surer on average (0.85), but "Seven" is gone: refused.
    assert not accept_redo(first, [bob(10.4, "of", 0.8), bob(10.8, "clubs.", 0.9)])
    # The same words with other case and punctuation keep it: accepted.
    assert accept_redo(first, [bob(10.05, "seven", 0.85), bob(10.4, "of", 0.8), bob(10.8, "clubs", 0.9)])
    # The unsure words may change or go.
    assert accept_redo(first, [bob(10.0, "Seven", 0.9), bob(10.8, "hearts.", 0.7)])
    # "Seven" said elsewhere is not the word the first pass heard.
    assert not accept_redo(first, [bob(10.4, "of", 0.8), bob(10.8, "clubs", 0.9), bob(11.5, "seven", 0.9)])
    # Less sure overall: refused, as before.
    assert not accept_redo(first, [bob(10.0, "Seven", 0.5), bob(10.4, "of", 0.4), bob(10.8, "clubs", 0.4)])
    assert not accept_redo(first, [])
    # Nothing heard surely: only the mean decides.
    unsure = [bob(10.0, "Seven", 0.5), bob(10.4, "of", 0.3)]
    assert accept_redo(unsure, [bob(10.4, "of", 0.8)])
    assert accept_redo(first, [bob(10.4, "of", 0.8)], ContextRules(keep_probability=0.95))


def test_clips_round_trip_compactly() -> None:
    rng = np.random.default_rng(2)
    clips = [
        Clip("bob", 12.5, (0.1 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)),
        Clip("bob", 40.0, np.zeros(SAMPLE_RATE, dtype=np.float32)),
    ]
    data = clips_to_bytes(clips)
    back = clips_from_bytes(data)
    assert [(c.speaker, c.start, len(c.samples)) for c in back] == [("bob", 12.5, 48000), ("bob", 40.0, 16000)]
    assert np.abs(back[0].samples - clips[0].samples).max() < 1e-4
    assert back[1].end == 41.0
    assert clips_from_bytes(clips_to_bytes([])) == []


def test_context_clips_cut_the_unsure_utterance_with_padding() -> None:
    audio = np.arange(20 * SAMPLE_RATE, dtype=np.float32)
    words = say("bob", 2.0, "I was thinking about it") + [
        Word(12.0, 12.3, "ten", "bob", 0.4),
        Word(12.4, 12.9, "clubs", "bob", 0.5),
    ]
    (clip,) = context_clips(audio, words, offset=0.0)
    assert clip.speaker == "bob"
    assert clip.start == pytest.approx(11.6) and clip.end == pytest.approx(13.3)
    assert clip.samples[0] == audio[round(11.6 * SAMPLE_RATE)]


@pytest.mark.slow
def test_context_pass_redoes_short_utterances_and_does_no_harm(
    model: WhisperModel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    space = build_space(
        [
            Utterance("alice", 0.5, "Welcome to cards night. Which card did you draw?"),
            Utterance("bob", 4.5, "The ten of clubs."),
            Utterance("alice", 7.5, "How many players are at the table?"),
            Utterance("bob", 11.0, "Six players."),
            Utterance("bob", 15.0, "I read a wonderful book about the history of the ocean."),
        ],
        {"alice": VOICES[0], "bob": VOICES[2]},
        duration=20.0,
        out_dir=tmp_path_factory.mktemp("cards"),
    )
    audio = {s: decode(p) for s, p in space.items()}
    first = [TrackWords(s, transcribe(model, audio[s], speaker=s, offset=0.0), None) for s in ("alice", "bob")]
    # Every utterance up to 2 s, sure or not, to exercise the pass: bob's two answers.
    rules = ContextRules(max_confidence=1.01, max_utterance=2.0, merge_gap=0.0)
    clips = [context_clips(audio[t.speaker], t.words, offset=0.0, rules=rules) for t in first]
    assert len(clips[1]) == 2
    refined = refine_room(model, first, clips, rules=rules)
    bob_first, bob = first[1].words, refined[1].words
    assert all(w.speaker == "bob" for w in bob)
    assert [w.start for w in bob] == sorted(w.start for w in bob)
    # A redone answer still starts where the first pass heard it begin, not in the clip's padding.
    for clip in clips[1]:
        before = [w.start for w in bob_first if clip.start <= w.start < clip.end]
        after = [w.start for w in bob if clip.start <= w.start < clip.end]
        assert not after or min(after) >= min(before) - 1e-6
    # The long last sentence is not redone: untouched.
    assert [w for w in bob if w.start >= 14.5] == [w for w in bob_first if w.start >= 14.5]
    assert word_error_rate(space.truth["bob"], bob) <= word_error_rate(space.truth["bob"], bob_first) + 0.05
