"""Where the room pass's word errors differ from the mix baseline's, utterance by utterance.

One pooled WER says how many errors, not where they come from. Here both
transcripts are put on speakers the same way (the baseline's words on the
track loudest while they are said, as :func:`transcribe.room.attribute`
does for ours), each word goes to its speaker's nearest true utterance, and
each utterance's errors (substitutions, deletions, insertions) are counted
for both. An utterance where the counts differ is printed with both texts
and where it lies: in an overlap region the room pass redoes per track, near
a cut between runs of the mix, or elsewhere (a different decode of the same
audio). Words far from any of their speaker's utterances are strays: an
insertion in silence, or a word put on the wrong speaker.

    .venv/bin/python -m bench.transcripts --spaces espeak --errors
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spaces.models import Word
from tests.speech import Space, normalizer
from transcribe.levels import Levels
from transcribe.room import RoomRules, RoomTrack, attribute, cuts, overlap_regions, speech_stretches

_STRAY = 1.0  # seconds from every utterance of its speaker that make a word a stray
_NEAR_CUT = 3.0  # seconds from a cut that put an utterance "at the cut"


@dataclass(frozen=True)
class UtteranceErrors:
    speaker: str
    start: float
    end: float
    where: str
    truth: str
    ours: str
    mix: str
    ours_errors: int
    mix_errors: int


def _errors(ref: str, hyp: str) -> int:
    import jiwer

    if not ref.split():
        return len(hyp.split())
    if not hyp.split():
        return len(ref.split())
    out = jiwer.process_words(ref, hyp)
    return int(out.substitutions + out.deletions + out.insertions)


def _by_utterance(spans: Sequence[tuple[float, float]], words: Sequence[Word]) -> tuple[list[list[Word]], list[Word]]:
    """Each word on the nearest of ``spans`` (by its middle), and the strays far from all."""
    out: list[list[Word]] = [[] for _ in spans]
    strays: list[Word] = []
    for w in sorted(words, key=lambda w: w.start):
        middle = (w.start + w.end) / 2
        distance = [max(0.0, s - middle, middle - e) for s, e in spans]
        i = min(range(len(spans)), key=lambda k: distance[k]) if spans else -1
        if i < 0 or distance[i] > _STRAY:
            strays.append(w)
        else:
            out[i].append(w)
    return out, strays


def utterance_errors(
    space: Space,
    ours: Sequence[Word],
    mix: Sequence[Word],
    levels: Mapping[str, Levels],
    *,
    passes: int = 2,
) -> tuple[list[UtteranceErrors], dict[str, list[Word]]]:
    """Every true utterance's errors, ours and the mix's; and each transcript's strays."""
    rules = RoomRules()  # the room pass's own
    speakers = list(levels)
    lvs = [levels[s] for s in speakers]
    on_speakers = attribute(mix, [RoomTrack(s, lv) for s, lv in zip(speakers, lvs, strict=True)])
    regions = overlap_regions(lvs, rules)
    redone = [(min(s for s, _ in r.spans.values()), max(e for _, e in r.spans.values())) for r in regions]
    at = cuts(speech_stretches(lvs, rules), passes, rules)
    norm = normalizer()
    rows: list[UtteranceErrors] = []
    strays: dict[str, list[Word]] = {"ours": [], "mix": []}
    for speaker, track in space.tracks.items():
        spans = list(zip((u.start for u in track.utterances), track.ends, strict=True))
        truth, _ = _by_utterance(spans, track.words)
        mine, stray_ours = _by_utterance(spans, [w for w in ours if w.speaker == speaker])
        theirs, stray_mix = _by_utterance(spans, [w for w in on_speakers if w.speaker == speaker])
        strays["ours"] += stray_ours
        strays["mix"] += stray_mix
        for (s, e), ref, a, b in zip(spans, truth, mine, theirs, strict=True):
            text = [norm(" ".join(w.text for w in ws)) for ws in (ref, a, b)]
            where = (
                "overlap"
                if any(lo <= e and s <= hi for lo, hi in redone)
                else "cut"
                if any(s - _NEAR_CUT <= c <= e + _NEAR_CUT for c in at)
                else "decode"
            )
            truth_text, ours_text, mix_text = text
            rows.append(
                UtteranceErrors(
                    speaker,
                    s,
                    e,
                    where,
                    truth_text,
                    ours_text,
                    mix_text,
                    _errors(truth_text, ours_text),
                    _errors(truth_text, mix_text),
                )
            )
    return sorted(rows, key=lambda r: r.start), strays


def report(rows: Sequence[UtteranceErrors], strays: Mapping[str, Sequence[Word]]) -> str:
    """The utterances where ours and the mix differ, and the totals by where they lie."""
    lines = ["utterances where ours and the mix differ (errors ours / mix):"]
    for r in rows:
        if r.ours_errors != r.mix_errors:
            lines += [
                f"  {r.start:7.1f}-{r.end:6.1f} s {r.speaker:6} {r.where:8} {r.ours_errors} / {r.mix_errors}",
                f"      truth: {r.truth}",
                f"      ours:  {r.ours}",
                f"      mix:   {r.mix}",
            ]
    lines.append("errors by where (ours, mix; ours worse in / better in utterances):")
    for where in ("overlap", "cut", "decode"):
        mine = [r for r in rows if r.where == where]
        lines.append(
            f"  {where:8} {sum(r.ours_errors for r in mine):4d} {sum(r.mix_errors for r in mine):4d};"
            f" {sum(r.ours_errors > r.mix_errors for r in mine)} / {sum(r.ours_errors < r.mix_errors for r in mine)}"
            f" of {len(mine)}"
        )
    for name, words in strays.items():
        listed = ", ".join(f"{w.text}@{w.start:.1f}({w.speaker})" for w in words)
        lines.append(f"  strays {name}: {len(words)} {listed}")
    return "\n".join(lines)
