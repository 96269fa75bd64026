"""Caption cues from word timings, as WebVTT and SRT: the one caption writer.

Every stage that shows words as captions cuts them here, by the same
``CueRules``: the pipeline's replay captions (``workers``), the API's clip
captions (``replay_api``) and the live captions (``transcribe.streaming``,
the cue on screen now). It lives in the core so that each may import it.

Cues are cut from words, never from Whisper's segments: on a sparse
per-speaker track a segment can run for 30 s across long silences, which
would leave a caption on screen long after its words were said.

A cue holds one speaker's consecutive words, at most ``max_lines`` lines of
``max_line_chars`` characters and ``max_duration`` seconds, and a pause of
``pause`` seconds or more always starts a new one. Two speakers talking at
once get two cues at once (WebVTT players show both).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from spaces.models import Turn, Word

_SENTENCE_END = re.compile(r"[.?!][\"')\]]*$")


@dataclass(frozen=True)
class CueRules:
    max_line_chars: int = 42
    max_lines: int = 2
    max_duration: float = 7.0
    pause: float = 0.7


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    speaker: str
    lines: tuple[str, ...]
    language: str = ""

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def build_cues(turns: Sequence[Turn], rules: CueRules = CueRules()) -> list[Cue]:
    """Cut every turn's words into cues, sorted by start (then speaker)."""
    cues: list[Cue] = []
    for turn in turns:
        start_at = len(cues)
        current: list[Word] = []
        for word in _pieces(turn.words, rules.max_line_chars):
            if current and not _room_for(current, word, rules):
                cues.append(_cue(current, rules))
                current = []
            current.append(word)
        if current:
            cues.append(_cue(current, rules))
        if turn.language:
            cues[start_at:] = [replace(c, language=turn.language) for c in cues[start_at:]]
    return sorted(cues, key=lambda c: (c.start, c.speaker, c.end))


def shifted(cues: Sequence[Cue], offset: float) -> list[Cue]:
    """Cues on a clip's clock (``offset`` s of the room clock is its zero); none starts before 0."""
    out = []
    for cue in cues:
        start = max(0.0, cue.start - offset)
        out.append(Cue(start=start, end=max(start + 0.001, cue.end - offset), speaker=cue.speaker, lines=cue.lines))
    return out


def on_screen(words: Sequence[Word], rules: CueRules = CueRules()) -> tuple[str, ...]:
    """The lines a live caption shows now: the last cue of an utterance's words so far."""
    if not words:
        return ()
    return build_cues([Turn(words[0].speaker, tuple(words))], rules)[-1].lines


def layout(texts: Sequence[str], rules: CueRules) -> tuple[str, ...] | None:
    """Words broken into at most ``max_lines`` lines, or None if they do not fit.

    Two lines are balanced (the break that makes the longer line shortest),
    which reads better than filling the first line to the brim.
    """
    if not texts:
        return ()
    if len(" ".join(texts)) <= rules.max_line_chars:
        return (" ".join(texts),)
    if rules.max_lines == 2:
        best: tuple[str, str] | None = None
        for i in range(1, len(texts)):
            a, b = " ".join(texts[:i]), " ".join(texts[i:])
            if len(a) <= rules.max_line_chars and len(b) <= rules.max_line_chars:
                if best is None or max(len(a), len(b)) < max(len(best[0]), len(best[1])):
                    best = (a, b)
        return best
    lines: list[str] = []
    for text in texts:
        if lines and len(lines[-1]) + 1 + len(text) <= rules.max_line_chars:
            lines[-1] += " " + text
        else:
            lines.append(text)
    return (
        tuple(lines)
        if len(lines) <= rules.max_lines and all(len(line) <= rules.max_line_chars for line in lines)
        else None
    )


def _room_for(current: Sequence[Word], word: Word, rules: CueRules) -> bool:
    if word.start - current[-1].end >= rules.pause:
        return False
    if word.end - current[0].start > rules.max_duration:
        return False
    texts = [w.text for w in current]
    # A full line that ends a sentence is a natural place to start a new cue.
    if _SENTENCE_END.search(texts[-1]) and len(" ".join(texts)) >= rules.max_line_chars:
        return False
    return layout([*texts, word.text], rules) is not None


def _cue(words: Sequence[Word], rules: CueRules) -> Cue:
    lines = layout([w.text for w in words], rules)
    if lines is None:  # unreachable: every cue was grown one fitting word at a time
        raise AssertionError("cue words do not fit")
    start = words[0].start
    end = min(max(w.end for w in words), start + rules.max_duration)
    # A cue must end after it starts, also once rounded to milliseconds.
    return Cue(start=start, end=max(end, start + 0.001), speaker=words[0].speaker, lines=lines)


def _pieces(words: Sequence[Word], width: int) -> list[Word]:
    """Words with clean spacing; one longer than a line (a URL) cut into pieces, time shared out."""
    out: list[Word] = []
    for w in words:
        text = " ".join(w.text.split())
        if not text:
            continue
        if len(text) <= width:
            out.append(w if text == w.text else Word(w.start, w.end, text, w.speaker, w.probability))
            continue
        parts = [text[i : i + width] for i in range(0, len(text), width)]
        step = (w.end - w.start) / len(parts)
        out.extend(
            Word(w.start + i * step, w.start + (i + 1) * step, part, w.speaker, w.probability)
            for i, part in enumerate(parts)
        )
    return out


def timestamp(seconds: float, *, sep: str = ".") -> str:
    """``hh:mm:ss.mmm`` (WebVTT) or, with ``sep=","``, ``hh:mm:ss,mmm`` (SRT)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def _times(cue: Cue, sep: str) -> str:
    start = timestamp(cue.start, sep=sep)
    end = timestamp(max(cue.end, cue.start + 0.001), sep=sep)
    return f"{start} --> {end}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_webvtt(cues: Sequence[Cue], *, language: str = "") -> str:
    """A WebVTT file; each cue's text is in a ``<v Speaker>`` voice span.

    With ``language`` (the space's main one), the header declares it
    (``Language:``, as HLS and YouTube write it) and a cue in another
    language is wrapped in a ``<lang xx>`` span, so players and screen
    readers pronounce each speaker in their own language.
    """
    blocks = [f"WEBVTT\nLanguage: {language}" if language else "WEBVTT"]
    for i, cue in enumerate(cues, 1):
        speaker = _escape(" ".join(cue.speaker.split()))
        text = "\n".join(_escape(line) for line in cue.lines)
        if language and cue.language and cue.language != language:
            text = f"<lang {cue.language}>{text}</lang>"
        blocks.append(f"{i}\n{_times(cue, '.')}\n<v {speaker}>{text}")
    return "\n\n".join(blocks) + "\n"


def to_srt(cues: Sequence[Cue]) -> str:
    """An SRT file; the first line of each cue starts with ``Speaker: ``."""
    blocks = []
    for i, cue in enumerate(cues, 1):
        lines = list(cue.lines)
        if lines:
            lines[0] = f"{' '.join(cue.speaker.split())}: {lines[0]}"
        blocks.append(f"{i}\n{_times(cue, ',')}\n" + "\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")
