"""The room pass: the mix for the words, the tracks for the speakers and the overlaps."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import WhisperModel

from spaces.models import Word
from tests.speech import SENTENCES, VOICES, Space, Utterance, build_space, match_words, word_error_rate
from transcribe.audio import decode
from transcribe.context_pass import Clip
from transcribe.levels import levels
from transcribe.room import (
    RoomRules,
    TrackAudio,
    add_to_mix,
    join_clips,
    overlap_regions,
    overlap_share,
    transcribe_tracks,
)

pytestmark = pytest.mark.slow

#: Room time of the tracks' first sample (not zero, on purpose).
OFFSET = 100.0


@pytest.fixture(scope="module")
def crosstalk(tmp_path_factory: pytest.TempPathFactory) -> Space:
    """bob talks over the middle of alice's turn for about two seconds; then a question, a short answer."""
    return build_space(
        (
            Utterance("alice", 0.5, f"{SENTENCES[0]} {SENTENCES[1]}"),
            Utterance("bob", 3.0, SENTENCES[2]),
            Utterance("alice", 12.0, "Which card did you draw?"),
            Utterance("bob", 13.8, "The ten of clubs."),
        ),
        {"alice": VOICES[0], "bob": VOICES[1]},
        duration=18.0,
        out_dir=tmp_path_factory.mktemp("crosstalk"),
        suffix=".ogg",
    )


def together(space: Space) -> list[tuple[float, float]]:
    """Where both speakers' true words overlap in time."""
    a, b = space.truth.values()
    return [(max(x.start, y.start), min(x.end, y.end)) for x in a for y in b if x.start < y.end and y.start < x.end]


def room(model: WhisperModel, space: Space, offset: float = 0.0) -> list[Word]:
    """What the room job does, on a space's files (every track starting at ``offset``)."""
    tracks = [TrackAudio(s, levels(decode(p), offset=offset), [(offset, decode(p))]) for s, p in space.items()]
    return transcribe_tracks(model, tracks, start=offset, end=offset + space.duration)


def test_a_room_talking_over_itself_is_told_from_one_taking_turns(
    tmp_path_factory: pytest.TempPathFactory, crosstalk: Space
) -> None:
    # Both speak from start to end (as in the crash test's looping clients):
    # the mix is no context for anyone, so the room pass must not be chosen.
    sentences = {"alice": f"{SENTENCES[0]} {SENTENCES[1]}", "bob": f"{SENTENCES[2]} {SENTENCES[3]}"}
    talking_over = build_space(
        tuple(Utterance(s, 0.3, text) for s, text in sentences.items()),
        {"alice": VOICES[0], "bob": VOICES[1]},
        duration=8.0,
        out_dir=tmp_path_factory.mktemp("talking-over"),
    )
    rules = RoomRules()
    over = overlap_share([levels(decode(p), offset=0.0) for p in talking_over.values()])
    assert over > rules.max_overlap_share, over
    in_turn = overlap_share([levels(decode(p), offset=OFFSET) for p in crosstalk.values()])
    assert 0 < in_turn <= rules.max_overlap_share, in_turn


def test_overlap_is_found_from_levels_alone(crosstalk: Space) -> None:
    lv = [levels(decode(p), offset=OFFSET) for p in crosstalk.values()]
    regions = overlap_regions(lv)
    both = together(crosstalk)
    assert both, "the voices do not overlap: nothing to check"
    assert len(regions) == 1, regions
    (region,) = regions
    assert region.core[0] == pytest.approx(OFFSET + both[0][0], abs=0.3)
    assert region.core[1] == pytest.approx(OFFSET + both[-1][1], abs=0.5)
    assert set(region.spans) == {0, 1}
    # Each speaker's clip covers their whole utterance around the overlap (alice's from 0.5 s).
    alice = crosstalk.truth["alice"]
    assert region.spans[0][0] <= OFFSET + alice[0].start
    assert region.spans[1][1] >= OFFSET + max(w.end for w in crosstalk.truth["bob"] if w.start < 10)


def test_words_go_to_their_speaker_and_overlap_keeps_both(model: WhisperModel, crosstalk: Space) -> None:
    words = room(model, crosstalk, OFFSET)
    truth = [w for ws in crosstalk.truth.values() for w in ws]
    shifted = [Word(w.start + OFFSET, w.end + OFFSET, w.text, w.speaker) for w in truth]
    pairs = match_words(shifted, words)
    assert len(pairs) >= 0.9 * len(truth)
    assert all(t.speaker == h.speaker for t, h in pairs), [(t, h) for t, h in pairs if t.speaker != h.speaker]
    for speaker in crosstalk:
        mine = [w for w in words if w.speaker == speaker]
        assert word_error_rate(crosstalk.truth[speaker], mine) <= 0.2, (speaker, mine)
    # Both speakers' words where they talk at once, each on its own speaker.
    lo, hi = together(crosstalk)[0][0], together(crosstalk)[-1][1]
    for speaker in crosstalk:
        said = [w for w in shifted if w.speaker == speaker and lo <= w.start - OFFSET <= hi]
        heard = [h for _, h in match_words(said, words)]
        assert len(heard) >= len(said) - 1, (speaker, said, heard)
    # The short answer, on its speaker.
    answer = [w.text for w in words if w.speaker == "bob" and w.start >= OFFSET + 13.5]
    assert word_error_rate("The ten of clubs.", " ".join(answer)) <= 0.25, answer


@pytest.mark.xfail(
    strict=False,
    reason="issue 16: one word either side of the bound (AMD EPYC, 2026-12-02): tiny.en hears alice's first words"
    " 'The weather' as 'But when there' on her own track and with plain faster-whisper too, not the room pass;"
    " with 0, 0.1, 0.25 s of silence before the space alice has 3 or 4 errors of 23 (0.130 / 0.174, bound 0.15)",
)
def test_bleed_does_not_make_a_speaker(model: WhisperModel, bleeding: Space) -> None:
    words = room(model, bleeding)
    bob = [w for w in words if w.speaker == "bob"]
    assert match_words(bleeding.truth["alice"], bob) == []
    assert word_error_rate(bleeding.truth["bob"], bob) <= 0.15
    assert word_error_rate(bleeding.truth["alice"], [w for w in words if w.speaker == "alice"]) <= 0.15
    # Bleed is never two speakers at once.
    assert overlap_regions([levels(decode(p), offset=0.0) for p in bleeding.values()]) == []


def test_tracks_are_added_at_their_offsets() -> None:
    one = np.ones(16000, dtype=np.float32)
    mix = np.zeros(32000, dtype=np.float32)
    for at in (0.0, 0.5, 1.75):  # the last one runs past the end
        add_to_mix(mix, one, offset=at)
    assert mix[:8000].max() == 1.0 and mix[8000:16000].min() == 2.0
    assert mix[24000:28000].max() == 0.0 and mix[28000:].min() == 1.0


def test_clips_cut_at_segment_seams_are_joined() -> None:
    a = Clip("t0", 10.0, np.ones(16000, dtype=np.float32))
    b = Clip("t0", 11.0, np.zeros(8000, dtype=np.float32))
    later = Clip("t0", 20.0, np.ones(10, dtype=np.float32))
    joined = join_clips([b, later, a])
    assert [(c.start, len(c.samples)) for c in joined] == [(10.0, 24000), (20.0, 10)]
