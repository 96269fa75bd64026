"""Captions: cues from word timings, WebVTT and SRT."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from spaces.captions import Cue, CueRules, build_cues, on_screen, to_srt, to_webvtt
from spaces.models import Turn, Word


def turn(speaker: str, start: float, text: str, *, step: float = 0.4) -> Turn:
    return Turn(
        speaker,
        tuple(Word(start + i * step, start + i * step + step * 0.8, t, speaker) for i, t in enumerate(text.split())),
    )


@st.composite
def turns(draw: st.DrawFn) -> list[Turn]:
    out = []
    for speaker in draw(st.lists(st.sampled_from(["alice", "bob", "carol"]), min_size=1, max_size=3, unique=True)):
        t = draw(st.floats(0, 100))
        ws = []
        for _ in range(draw(st.integers(1, 60))):
            t += draw(st.one_of(st.floats(0.0, 0.3), st.floats(0.3, 2.0)))
            length = draw(st.floats(0.05, 1.2))
            text = draw(
                st.one_of(
                    st.sampled_from(["the", "a", "clubs,", "tonight.", "Okay?"]),
                    st.text("abcdefghij", min_size=1, max_size=60),
                )
            )
            ws.append(Word(t, t + length, text, speaker))
            t += length
        out.append(Turn(speaker, tuple(ws)))
    return out


@given(turns())
@settings(max_examples=100, deadline=None)
def test_cue_rules_hold(ts: list[Turn]) -> None:
    rules = CueRules()
    cues = build_cues(ts, rules)
    for cue in cues:
        assert 1 <= len(cue.lines) <= rules.max_lines
        assert all(0 < len(line) <= rules.max_line_chars for line in cue.lines)
        assert 0 < cue.end - cue.start <= rules.max_duration + 1e-9
    assert [c.start for c in cues] == sorted(c.start for c in cues)
    # Every word is shown, once, by its own speaker, in order.
    for speaker in {t.speaker for t in ts}:
        said = "".join(w.text for t in ts if t.speaker == speaker for w in t.words)
        shown = "".join("".join(c.text.split()) for c in cues if c.speaker == speaker)
        assert shown == "".join(said.split())


def test_a_pause_splits_cues_and_cues_follow_word_times() -> None:
    t = turn("alice", 10.0, "Which card did you draw?")
    late = turn("alice", 13.0, "Tell me.")
    cues = build_cues([Turn("alice", t.words + late.words)])
    assert [c.text for c in cues] == ["Which card did you draw?", "Tell me."]
    assert cues[0].start == 10.0 and cues[0].end == t.words[-1].end
    assert cues[1].start == 13.0


def test_a_cue_never_straddles_speakers_and_overlap_gives_two_cues() -> None:
    a = turn("alice", 0.0, "I think we should go now")
    b = turn("bob", 0.8, "wait for me")
    cues = build_cues([a, b])
    assert {(c.speaker, c.text) for c in cues} == {
        ("alice", "I think we should go now"),
        ("bob", "wait for me"),
    }


def test_long_turn_is_cut_by_length_and_duration() -> None:
    text = " ".join(["word"] * 60)
    cues = build_cues([turn("alice", 0.0, text, step=0.3)])
    assert len(cues) >= 4
    assert all(len(c.lines) <= 2 and all(len(line) <= 42 for line in c.lines) for c in cues)
    two_lines = next(c for c in cues if len(c.lines) == 2)
    assert abs(len(two_lines.lines[0]) - len(two_lines.lines[1])) <= 5  # balanced lines


def test_webvtt_voice_tags_and_escaping() -> None:
    cues = [
        Cue(1.0, 2.5, "Alice <host>", ("fish & chips", "a < b > c")),
        Cue(3661.2, 3663.0, "Bob", ("Ten of clubs.",)),
    ]
    vtt = to_webvtt(cues)
    assert vtt.startswith("WEBVTT\n\n")
    assert "00:00:01.000 --> 00:00:02.500\n<v Alice &lt;host&gt;>fish &amp; chips\na &lt; b &gt; c\n" in vtt
    assert "01:01:01.200 --> 01:01:03.000\n<v Bob>Ten of clubs.\n" in vtt
    assert "-->" not in vtt.replace(" --> ", "")


def test_srt_numbering_and_format() -> None:
    cues = build_cues([turn("alice", 0.0, "Hello there."), turn("bob", 2.0, "Hi!")])
    srt = to_srt(cues)
    blocks = srt.strip("\n").split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["1", "2"]
    assert re.fullmatch(r"\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d", blocks[0].splitlines()[1])
    assert blocks[0].splitlines()[2] == "alice: Hello there."
    assert blocks[1].splitlines()[2] == "bob: Hi!"
    assert srt.endswith("\n") and to_srt([]) == ""


def test_empty() -> None:
    assert build_cues([]) == []
    assert to_webvtt([]) == "WEBVTT\n"


def test_a_live_caption_shows_the_last_cue_of_its_utterance() -> None:
    """Live captions follow the replay's rules: a long utterance shows its latest cue, 2 lines of 42 at most."""
    said = "so the plan for next week is that we meet on monday and then we write the whole report together"
    words = [Word(i * 0.3, i * 0.3 + 0.25, t, "ann") for i, t in enumerate(said.split())]
    cues = build_cues([Turn("ann", tuple(words))])
    assert len(cues) >= 2
    assert on_screen(words) == cues[-1].lines
    assert all(len(line) <= 42 for line in on_screen(words)) and len(on_screen(words)) <= 2
    assert on_screen(words[:3]) == ("so the plan",)
    assert on_screen([]) == ()
