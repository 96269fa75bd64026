"""Real tracks through transcribe + assemble: overlap kept, bleed removed."""

from __future__ import annotations

import pytest
from faster_whisper import WhisperModel

from spaces.models import Word
from tests.speech import Space, match_words, word_error_rate
from tests.support.transcribe import OFFSET, Transcribed
from transcribe.assemble import TrackWords, assemble
from transcribe.audio import decode
from transcribe.levels import levels
from transcribe.transcribe import transcribe

pytestmark = pytest.mark.slow


def run(model: WhisperModel, space: Space) -> tuple[dict[str, list[Word]], list[Word]]:
    first: dict[str, list[Word]] = {}
    tracks = []
    for speaker, path in space.items():
        audio = decode(path)
        first[speaker] = transcribe(model, audio, speaker=speaker, offset=0.0)
        tracks.append(TrackWords(speaker, first[speaker], levels(audio, offset=0.0)))
    return first, [w for turn in assemble(tracks) for w in turn.words]


def test_bleed_is_removed_and_own_words_stay(model: WhisperModel, bleeding: Space) -> None:
    first, final = run(model, bleeding)
    alice_truth = bleeding.truth["alice"]
    # The test is only meaningful if bob's microphone really produced alice's words.
    picked_up = match_words(alice_truth, first["bob"])
    assert len(picked_up) >= 0.6 * len(alice_truth)
    bob = [w for w in final if w.speaker == "bob"]
    assert match_words(alice_truth, bob) == []
    own_first = match_words(bleeding.truth["bob"], first["bob"])
    own_final = match_words(bleeding.truth["bob"], bob)
    assert len(own_final) == len(own_first)
    assert word_error_rate(bleeding.truth["bob"], bob) <= 0.25
    # alice keeps every word she had.
    assert [w for w in final if w.speaker == "alice"] == first["alice"]


def test_bleed_is_not_transcribed_when_the_other_tracks_levels_are_known(model: WhisperModel, bleeding: Space) -> None:
    """What ``transcribe_track`` does once the levels stage has measured every track."""
    audio = {s: decode(p) for s, p in bleeding.items()}
    alice_levels = levels(audio["alice"], offset=0.0)
    bob = transcribe(model, audio["bob"], speaker="bob", offset=0.0, others=[alice_levels])
    assert match_words(bleeding.truth["alice"], bob) == []
    assert len(match_words(bleeding.truth["bob"], bob)) >= 0.8 * len(bleeding.truth["bob"])
    # Levels of a track that was silent meanwhile take nothing away.
    quiet = levels(audio["alice"] * 0.0, offset=0.0)
    assert len(
        match_words(bleeding.truth["alice"], transcribe(model, audio["bob"], speaker="bob", offset=0.0, others=[quiet]))
    ) >= 0.6 * len(bleeding.truth["alice"])


def test_overlapping_speech_is_kept_for_both(dialogue_words: Transcribed) -> None:
    """Where two people talk at once, assembly keeps every word each track heard, on its speaker.

    What the words are is the model's business (tiny.en hears espeak's "ocean"
    as "notion" with some espeak-ng builds); that none is dropped as bleed or
    moved to the other speaker is assembly's.
    """
    tracks = [TrackWords(s, ws, dialogue_words.levels[s]) for s, ws in dialogue_words.words.items()]
    final = [w for turn in assemble(tracks) for w in turn.words]
    # alice says "... history of the ocean." until ~11.7 s while bob starts at 11.0.
    for speaker, lo, hi in (("alice", 10.5, 12.0), ("bob", 10.8, 12.5)):
        heard = [w for w in dialogue_words.words[speaker] if lo <= w.start - OFFSET <= hi]
        kept = [w for w in final if w.speaker == speaker and lo <= w.start - OFFSET <= hi]
        assert heard, f"{speaker}'s track has no words in the overlap: nothing to check"
        assert kept == heard, (speaker, heard, kept)
