"""Repeated-phrase loops are cut; ordinary repetition stays."""

from __future__ import annotations

from spaces.models import Word
from transcribe.loops import drop_loops


def words(text: str) -> list[Word]:
    return [Word(i * 0.5, i * 0.5 + 0.4, t, "a") for i, t in enumerate(text.split())]


def texts(ws: list[Word]) -> str:
    return " ".join(w.text for w in ws)


def test_loop_of_a_phrase_keeps_its_first_occurrence() -> None:
    text = "so I said " + "thank you for watching. " * 6 + "and then we left"
    assert texts(drop_loops(words(text))) == "so I said thank you for watching. and then we left"


def test_loop_of_one_word() -> None:
    assert texts(drop_loops(words("the the the the the the end"))) == "the end"


def test_people_may_repeat_themselves_a_little() -> None:
    for text in ("no, no, no, that is wrong", "thank you, thank you all", "very very good"):
        assert texts(drop_loops(words(text))) == text


def test_loop_detection_ignores_case_and_punctuation() -> None:
    assert texts(drop_loops(words("Go on. go on, GO ON! go on and on"))) == "Go on. and on"


def test_keeps_times_of_what_stays() -> None:
    ws = words("hello hello hello hello world")
    kept = drop_loops(ws)
    assert kept == [ws[0], ws[4]]


def test_a_sentence_heard_again_in_an_instant_is_said_once() -> None:
    said = words("My sister is learning to play the piano this year.")
    # Whisper's second hearing, as the live revision got it: ten words in half a second.
    again = [Word(said[-1].end + i * 0.05, said[-1].end + i * 0.05 + 0.05, w.text, "a") for i, w in enumerate(said)]
    assert drop_loops([*said, *again, *words("Then")]) == [*said, words("Then")[0]]
    # Squeezed first, at speaking pace after: the one said at speaking pace stays.
    squeezed = [Word(i * 0.01, i * 0.01, w.text, "a") for i, w in enumerate(said)]
    later = [Word(1.0 + w.start, 1.0 + w.end, w.text, "a") for w in said]
    assert drop_loops([*squeezed, *later]) == later


def test_a_sentence_said_twice_at_speaking_pace_stays_twice() -> None:
    text = "I do not know. I do not know."
    assert texts(drop_loops(words(text))) == text


def test_a_loop_squeezed_into_an_instant_keeps_one_copy() -> None:
    # Whisper's usual loop: its timestamps squeezed, as well as the phrase repeated.
    text = "so I said " + "thank you for watching. " * 6 + "and then we left"
    squeezed = [Word(i * 0.01, i * 0.01 + 0.01, t, "a") for i, t in enumerate(text.split())]
    assert texts(drop_loops(squeezed)) == "so I said thank you for watching. and then we left"
    assert texts(drop_loops([Word(i * 0.01, i * 0.01, "the", "a") for i in range(8)])) == "the"
