"""Issue 3's evaluation space: a scripted conversation with known truth.

Four speakers with distinct espeak-ng voices, turns of 1 to 20 s, two
stretches of overlapping speech, one track where another speaker bleeds in
at -18 dB, one late joiner, one long silence, and short answers to another
speaker's question after a silence of their own. ``bench/transcripts.py``
builds it at 10 minutes; the pipeline's quality test at one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

from spaces.models import Word
from tests.speech import VOICES, Space, Utterance, build_space, synthesize, word_error_rate
from transcribe.audio import decode

SPEAKERS = ("alice", "bob", "carol", "dave")
BLEED = ("carol", "alice", -18.0)  # alice's voice on carol's microphone
LATE = "dave"

# Sentences are built from parts so that none is said twice: a repeated
# sentence would let Whisper's prompt (the text so far) give the answer away.
SUBJECTS = (
    "My sister",
    "Our neighbor",
    "The new manager",
    "My grandfather",
    "A friend of mine",
    "The teacher",
    "Her brother",
    "Our whole team",
    "The old farmer",
    "My cousin",
    "The young doctor",
    "His daughter",
    "The bus driver",
    "My best friend",
    "The baker",
    "Our landlord",
    "The mayor",
    "My uncle",
)
ACTIONS = (
    "bought a small house",
    "painted the kitchen",
    "found an old map",
    "planted tomatoes",
    "fixed the bicycle",
    "baked fresh bread",
    "wrote a long letter",
    "visited the museum",
    "lost the car keys",
    "booked a table",
    "sold the piano",
    "adopted a puppy",
    "opened a bookshop",
    "ran a marathon",
    "climbed the hill",
    "cleaned the garage",
    "caught a big fish",
    "learned to swim",
    "moved to a new flat",
    "missed the last train",
    "cooked a huge dinner",
    "repaired the roof",
    "borrowed my ladder",
    "painted a portrait",
    "watched the parade",
)
PLACES = (
    "near the river",
    "in the city",
    "at the station",
    "behind the school",
    "by the lake",
    "downtown",
    "in the garden",
    "at the market",
    "across the street",
    "in the village",
    "on the island",
    "at the harbor",
)
TIMES = (
    "last week",
    "this morning",
    "on Sunday",
    "after lunch",
    "before the storm",
    "in April",
    "yesterday",
    "last summer",
    "on Friday night",
    "two days ago",
    "over the holidays",
    "early today",
)


def sentences(rng: random.Random) -> list[str]:
    """Every sentence the parts make, shuffled: each is used at most once."""
    out = [f"{s} {a} {p} {t}." for s in SUBJECTS for a in ACTIONS for p in PLACES for t in TIMES]
    rng.shuffle(out)
    return out


SHORT = (
    "Yes, exactly.",
    "I agree.",
    "That sounds good.",
    "Not really.",
    "Of course.",
    "Thank you.",
    "Good idea.",
    "I am not sure.",
    "Absolutely.",
    "Maybe next week.",
)

# A question from one speaker, a short answer from another after a long
# silence of theirs: the case where context across speakers matters.
QUESTIONS = (
    ("Which card did you draw?", "The ten of clubs."),
    ("What is the capital of France?", "Paris, of course."),
    ("How many players are at the table?", "Six players."),
    ("What did you have for dinner?", "Fish and chips."),
    ("Which suit is trumps tonight?", "Spades."),
    ("What time does the game start?", "At eight o'clock."),
    ("Who won the last round?", "My brother did."),
    ("What colour is the queen of hearts?", "Red."),
)


# --- the space ---------------------------------------------------------------


@dataclass
class Plan:
    utterances: list[Utterance]
    duration: float
    silence: tuple[float, float]
    overlaps: list[tuple[float, float]]
    join: float


def plan_space(duration: float, seed: int = 3) -> Plan:
    """A scripted conversation: who says what when, with the issue's special stretches."""
    rng = random.Random(seed)
    talk = sentences(rng)

    def seconds(text: str, speaker: str) -> float:
        return synthesize(text, VOICES[SPEAKERS.index(speaker)]).duration

    utterances: list[Utterance] = []
    join = round(duration * 0.3, 1)
    silence_at = duration * 0.45
    silence = (0.0, 0.0)
    overlap_at = [duration * 0.2, duration * 0.65]
    overlaps: list[tuple[float, float]] = []
    asked = 0
    t, last = 1.0, ""
    while True:
        present = [s for s in SPEAKERS if s != last and (s != LATE or t > join + 1)]
        speaker = rng.choice(present)
        if t > silence_at and silence == (0.0, 0.0):
            quiet = max(10.0, 0.075 * duration)
            silence = (t - 0.5, t + quiet)
            t += quiet + 0.5
        if asked < len(QUESTIONS) and rng.random() < 0.18:
            # A question and its short answer by someone else.
            question, answer = QUESTIONS[asked]
            asked += 1
            other = rng.choice([s for s in present if s != speaker] or present)
            if t + seconds(question, speaker) + 0.8 + seconds(answer, other) > duration - 2:
                break
            utterances.append(Utterance(speaker, round(t, 2), question))
            t += seconds(question, speaker) + rng.uniform(0.6, 1.0)
            utterances.append(Utterance(other, round(t, 2), answer))
            t += seconds(answer, other) + rng.uniform(0.6, 1.5)
            last = other
            continue
        target = rng.choice([1.5, rng.uniform(3, 8), rng.uniform(6, 20)])
        spoken = 0.0
        start = t
        turn: list[str] = []
        while spoken < target:
            text = rng.choice(SHORT) if target < 2 else talk.pop()
            if spoken and spoken + seconds(text, speaker) > 20:
                break
            turn.append(text)
            spoken += seconds(text, speaker) + 0.35
        if start + spoken > duration - 2:
            break
        for text in turn:
            utterances.append(Utterance(speaker, round(t, 2), text))
            t += seconds(text, speaker) + 0.35
        last = speaker
        gap = rng.uniform(0.4, 1.4)
        if overlap_at and t > overlap_at[0]:
            # The next speaker starts 2-3 s before this one ends.
            overlap_at.pop(0)
            back = rng.uniform(2.0, 3.0)
            overlaps.append((t - back, t))
            gap = -back
        t += gap
    return Plan(utterances, duration, silence, overlaps, join)


def build(plan: Plan, out: Path, *, suffix: str = ".ogg") -> Space:
    """The space of ``plan``; ``suffix``: its tracks' format (``.ogg``: Opus at 32 kb/s, as the tests
    measured their bounds; ``.wav`` for the bench to code as a browser would, ``bench.transcripts.as_recorded``)."""
    victim, source, db = BLEED
    return build_space(
        plan.utterances,
        dict(zip(SPEAKERS, VOICES, strict=True)),
        duration=plan.duration,
        out_dir=out,
        bleed={victim: (source, db)},
        starts={LATE: plan.join},
        suffix=suffix,
    )


def silent_stretches(space: Space, *, margin: float = 0.5, shortest: float = 2.0) -> list[tuple[float, float]]:
    """Stretches where nobody speaks (true words with ``margin``), at least ``shortest`` long."""
    busy = sorted((w.start - margin, w.end + margin) for w in space.words())
    out: list[tuple[float, float]] = []
    t = 0.0
    for s, e in busy:
        if s - t >= shortest:
            out.append((t, s))
        t = max(t, e)
    if space.duration - t >= shortest:
        out.append((t, space.duration))
    return out


def in_silence(words: Sequence[Word], stretches: Sequence[tuple[float, float]]) -> int:
    """Words begun where nobody spoke.

    By its start, not its middle: Whisper sometimes stretches a turn's last
    word over the pause after it (alice's "night." from 31.5 to 34.4 s, the
    silence from 32.3 s), a word said all the same.
    """
    return sum(1 for w in words if any(s <= w.start <= e for s, e in stretches))


def in_utterance_order(space: Space) -> list[Word]:
    """Every true word, utterance by utterance (an utterance's words stay together)."""
    words = sorted(space.words(), key=lambda w: w.start)
    starts = sorted((u.start, u.speaker) for t in space.tracks.values() for u in t.utterances)

    def utterance_of(w: Word) -> tuple[float, str]:
        mine = [s for s in starts if s[1] == w.speaker and s[0] <= w.start + 1e-6]
        return mine[-1]

    return sorted(words, key=lambda w: (utterance_of(w), w.start))


def baseline_words(model: WhisperModel, mix: Path | np.ndarray) -> list[Word]:
    """The naive baseline: faster-whisper on the mix (a file, or 16 kHz samples), the
    way most people use it (plus word timestamps); its words have no speaker."""
    segments, _ = model.transcribe(decode(mix) if isinstance(mix, Path) else mix, language="en", word_timestamps=True)
    said = [w for s in segments for w in s.words or () if w.word.strip()]
    return [Word(w.start, w.end, w.word.strip(), "", w.probability) for w in said]


# --- spaces closer to real rooms (issue 16) ----------------------------------

#: Seven distinct espeak-ng voices for the many-speaker space.
MANY_VOICES = ("en-us+m3", "en-gb+f2", "en+m5", "en-us+f4", "en-gb+m2", "en-us+f3", "en-us+m6")
MANY = ("alice", "bob", "carol", "dave", "erin", "frank", "grace")

#: The answers space's three speakers through three engines (:mod:`tests.engines`):
#: a Scottish man (Flite), an American man's diphones on the phone (Festival),
#: an American woman (Festival's HTS).
ENGINE_VOICES = ("flite:awb", "festival:kal_diphone", "festival:cmu_us_slt_arctic_hts")
#: The many-speaker space's seven through all three engines.
MANY_ENGINE_VOICES = (
    "flite:awb",
    "en-gb+f2",
    "festival:kal_diphone",
    "en-us+f4",
    "flite:rms",
    "festival:cmu_us_slt_arctic_hts",
    "festival:ked_diphone",
)


def plan_answers(rounds: int, seed: int = 5, voices: Sequence[str] = VOICES) -> list[Utterance]:
    """Long turns, each ending in a question that the next speaker answers in one to four words.

    Three speakers in turn (``voices``, in the order of :data:`SPEAKERS`),
    natural pauses (0.5 to 1.2 s) between them: the case where a short
    answer transcribed alone has no context.
    """
    rng = random.Random(seed)
    talk = sentences(rng)
    who = SPEAKERS[:3]
    utterances: list[Utterance] = []
    t = 0.8
    for i in range(rounds):
        speaker, other = who[i % 3], who[(i + 1) % 3]
        question, answer = QUESTIONS[i % len(QUESTIONS)]
        for text in [*(talk.pop() for _ in range(rng.choice((2, 3)))), question]:
            utterances.append(Utterance(speaker, round(t, 2), text))
            t += synthesize(text, voices[SPEAKERS.index(speaker)]).duration + rng.uniform(0.25, 0.5)
        t += rng.uniform(0.3, 0.8)
        utterances.append(Utterance(other, round(t, 2), answer))
        t += synthesize(answer, voices[SPEAKERS.index(other)]).duration + rng.uniform(0.6, 1.2)
    return utterances


def build_answers(
    out: Path,
    rounds: int = 4,
    seed: int = 5,
    *,
    phone: Sequence[str] = ("bob",),
    voices: Sequence[str] = VOICES,
    suffix: str = ".ogg",
) -> Space:
    """:func:`plan_answers` with ``phone`` speakers band-limited like a telephone (tracks as :func:`build`'s)."""
    utterances = plan_answers(rounds, seed, voices)
    end = max(u.start + synthesize(u.text, voices[SPEAKERS.index(u.speaker)]).duration for u in utterances)
    return build_space(
        utterances,
        dict(zip(SPEAKERS[:3], voices, strict=False)),
        duration=round(end + 1.5, 1),
        out_dir=out,
        suffix=suffix,
        phone=phone,
    )


def plan_many(duration: float, seed: int = 11, voices: Sequence[str] = MANY_VOICES) -> list[Utterance]:
    """Seven speakers (``voices``, in the order of :data:`MANY`) taking short turns (a remark to
    three sentences), one overlap."""
    rng = random.Random(seed)
    talk = sentences(rng)
    voice = dict(zip(MANY, voices, strict=True))
    utterances: list[Utterance] = []
    t, last, overlapped = 0.8, "", False
    while True:
        # Everyone speaks early on, then anyone.
        spoken = {u.speaker for u in utterances}
        speaker = rng.choice([s for s in MANY if s != last and s not in spoken] or [s for s in MANY if s != last])
        turn = [rng.choice(SHORT)] if rng.random() < 0.3 else [talk.pop() for _ in range(rng.choice((1, 1, 2)))]
        length = sum(synthesize(text, voice[speaker]).duration + 0.35 for text in turn)
        if t + length > duration - 1.5:
            break
        for text in turn:
            utterances.append(Utterance(speaker, round(t, 2), text))
            t += synthesize(text, voice[speaker]).duration + 0.35
        last = speaker
        if not overlapped and t > duration / 2:
            overlapped = True  # the next speaker starts 1.5 s before this one ends
            t -= 1.85
        else:
            t += rng.uniform(0.3, 1.0)
    return utterances


def build_many(
    out: Path,
    duration: float = 90.0,
    seed: int = 11,
    *,
    noise_db: float | None = -55.0,
    voices: Sequence[str] = MANY_VOICES,
    suffix: str = ".ogg",
) -> Space:
    """:func:`plan_many` with room noise on every microphone (tracks as :func:`build`'s)."""
    return build_space(
        plan_many(duration, seed, voices),
        dict(zip(MANY, voices, strict=True)),
        duration=duration,
        out_dir=out,
        suffix=suffix,
        noise_db=noise_db,
    )


def lone_utterances(space: Space, speaker: str) -> list[tuple[float, float]]:
    """(start, end) of the speaker's utterances that nobody else talks over."""
    mine = [(u.start, end) for u, end in zip(space.tracks[speaker].utterances, space.tracks[speaker].ends, strict=True)]
    others = [
        (u.start, end)
        for t in space.tracks.values()
        if t.speaker != speaker
        for u, end in zip(t.utterances, t.ends, strict=True)
    ]
    return [(s, e) for s, e in mine if not any(os < e + 0.5 and oe > s - 0.5 for os, oe in others)]


def wer_alone(space: Space, speaker: str, words: Sequence[Word]) -> float:
    """WER of ``words`` on the speaker's lone utterances, taken by time.

    The mix has no speakers, so the baseline can only be scored this way:
    the words within an utterance of ``speaker`` during which no one else speaks.
    """
    alone = lone_utterances(space, speaker)
    hyp = [w for s, e in alone for w in words if s - 0.3 <= (w.start + w.end) / 2 <= e + 0.3]
    return word_error_rate(lone_words(space, speaker), hyp)


def lone_words(space: Space, speaker: str) -> list[Word]:
    """The speaker's true words in their :func:`lone_utterances`."""
    return [w for s, e in lone_utterances(space, speaker) for w in space.truth[speaker] if s - 0.01 <= w.start <= e]


Span = tuple[str, float, float]
"""(speaker, start, end) on the room clock."""


def answer_spans(space: Space, *, margin: float = 0.5) -> list[Span]:
    """(speaker, start, end) of every short answer to a question (:data:`QUESTIONS`), widened by ``margin``."""
    answers = {a for _, a in QUESTIONS}
    return [
        (u.speaker, u.start - margin, end + margin)
        for t in space.tracks.values()
        for u, end in zip(t.utterances, t.ends, strict=True)
        if u.text in answers
    ]


def in_spans(
    spans: Sequence[tuple[str, float, float]], words: Sequence[Word], *, by_speaker: bool = True
) -> list[Word]:
    """The words starting in the spans (on the span's speaker, unless the words have none)."""
    return [w for who, lo, hi in spans for w in words if lo <= w.start <= hi and (not by_speaker or w.speaker == who)]


def pooled_wer(space: Space, words: Sequence[Word]) -> tuple[float, dict[str, float]]:
    """WER of every speaker's words against their truth, pooled by reference length; and per speaker."""
    speakers = [s for s in space.truth if space.truth[s]]
    wers = {s: word_error_rate(space.truth[s], [w for w in words if w.speaker == s]) for s in speakers}
    total = sum(len(space.truth[s]) for s in speakers)
    return sum(wers[s] * len(space.truth[s]) for s in speakers) / total, wers
