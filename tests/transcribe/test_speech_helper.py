"""The synthetic speech helper says what its truth says, where it says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.speech import SAMPLE_RATE, VOICES, Utterance, build_space, synthesize
from transcribe.audio import decode


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x.astype(np.float64))) + 1e-12))


def test_word_truth_follows_the_audio() -> None:
    speech = synthesize("Which card did you draw? The ten of clubs.", VOICES[1])
    assert [w[2] for w in speech.words] == "Which card did you draw? The ten of clubs.".split()
    assert speech.words[0][0] == 0.0 and speech.words[-1][1] == pytest.approx(speech.duration)
    starts = [w[0] for w in speech.words]
    assert starts == sorted(starts)
    for start, end, _ in speech.words:
        piece = speech.samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        assert rms_db(piece) > -40  # every word is audible where the truth puts it


def test_space_tracks_bleed_late_join_and_mix(tmp_path: Path) -> None:
    space = build_space(
        [Utterance("alice", 1.0, "Good evening everyone."), Utterance("bob", 6.0, "Hello there.")],
        {"alice": VOICES[0], "bob": VOICES[1]},
        duration=9.0,
        out_dir=tmp_path,
        bleed={"alice": ("bob", -18.0)},
        starts={"bob": 4.0},
    )
    assert set(space) == {"alice", "bob"} and space["alice"].exists()
    alice, bob, mix = decode(space["alice"]), decode(space["bob"]), decode(space.mix)
    assert len(alice) == 9 * SAMPLE_RATE and len(mix) == 9 * SAMPLE_RATE
    assert len(bob) == 5 * SAMPLE_RATE and space.starts["bob"] == 4.0  # joined at 4 s
    truth = space.truth["bob"]
    assert truth[0].start == pytest.approx(6.0) and truth[0].speaker == "bob"
    # bob's voice, 18 dB down, on alice's track, at bob's time
    at = slice(int(truth[0].start * SAMPLE_RATE), int(truth[-1].end * SAMPLE_RATE))
    bob_own = bob[int((truth[0].start - 4.0) * SAMPLE_RATE) : int((truth[-1].end - 4.0) * SAMPLE_RATE)]
    assert rms_db(alice[at]) - rms_db(bob_own) == pytest.approx(-18.0, abs=0.5)
    assert rms_db(alice[int(4.0 * SAMPLE_RATE) : int(5.8 * SAMPLE_RATE)]) < -80  # nobody speaks
    # The mix has no bleed: bob as loud as on his own track.
    assert rms_db(mix[at]) == pytest.approx(rms_db(bob_own), abs=0.5)


def test_cached_spaces_are_identical(tmp_path: Path) -> None:
    args = ([Utterance("alice", 0.5, "Good evening everyone.")], {"alice": VOICES[0]})
    one = build_space(*args, duration=3.0, out_dir=tmp_path / "one")
    two = build_space(*args, duration=3.0, out_dir=tmp_path / "two")
    assert one["alice"].read_bytes() == two["alice"].read_bytes()
    assert one.truth == two.truth
