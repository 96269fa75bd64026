"""Which language a speaker speaks, from enough of their speech and their room.

Whisper's language detection looks at one 30 s window. On a short or
unusual voice one window is fragile (a synthetic French voice was taken for
Thai or Hungarian at probability 0.33, with French second): here every
window of a track's speech is packed full by the VAD (no silence in it),
up to ``windows`` of them, and their probabilities are averaged, weighted by
how much speech each holds.

The other tracks of the room are evidence too, but only between the
languages the track itself finds plausible (:func:`decide`): a French
speaker in an English room stays French, while a doubtful "Hungarian or
French?" in a French room comes out French.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from faster_whisper import WhisperModel

from transcribe.audio import SAMPLE_RATE
from transcribe.model import encoder_window
from transcribe.samples import Samples
from transcribe.transcribe import pack
from transcribe.vad import VadOptions, speech_probabilities, speech_spans

Probabilities = dict[str, float]


@dataclass(frozen=True)
class DetectOptions:
    windows: int = 4
    """Windows of packed speech looked at, at most (each costs one encoder pass)."""
    window: float = 30.0
    min_speech: float = 2.0
    """Seconds of speech a window needs to count."""
    sure: float = 0.9
    sure_speech: float = 20.0
    """Once this many seconds of speech give one language ``sure`` probability on average, the
    windows after them are not looked at: a speaker of long turns cost four encoder passes, where
    the first said it (the answers bench space's levels in ``auto``: 3.5-4.0 s for three speakers)."""
    plausible: float = 0.5
    """A language is a candidate if its probability is at least this share of the track's best one."""
    keep: int = 10
    """Most probable languages kept per track (what the room's other tracks see)."""
    near_loudest: float = 35.0
    """dB below the track's loud frames where its VAD stops looking: the speaker's voice is near the
    top, room noise far below (:func:`transcribe.vad.speech_probabilities`); bleed, usually within it,
    is scored as before."""


def speaks_language(model: WhisperModel) -> bool:
    """Whether the model can be told a language (English-only models cannot)."""
    return bool(model.model.is_multilingual)


def detect(
    model: WhisperModel, audio: Samples, options: DetectOptions = DetectOptions()
) -> tuple[Probabilities, float]:
    """The track's language probabilities (most probable first) and the seconds of speech they rest on."""
    spans = speech_spans(speech_probabilities(audio, near_loudest=options.near_loudest), len(audio), VadOptions())
    total: dict[str, float] = {}
    seconds = 0.0
    for group in list(pack(spans, options.window))[: options.windows]:
        speech = sum(e - s for s, e in group) / SAMPLE_RATE
        if speech < options.min_speech and seconds > 0:
            continue
        packed = np.ascontiguousarray(np.concatenate([audio[s:e] for s, e in group]), dtype=np.float32)
        # Encoded over the speech and a second more, not 30 s: a speaker of a few seconds costs a
        # fraction of a pass, their probabilities alike. Multiples of 10 s first took the
        # seven-speaker bench space's tracks from 7.3 to 4.3 s (decode and VAD included; English
        # 0.59-0.92 -> 0.63-0.95); whole seconds then its seven passes from 3.0 to 2.2 s on an AVX2
        # machine (English 0.67-0.97 -> 0.69-0.96, the same language first on every track).
        # Only transcription wants the 10 s steps (WindowedWhisper's words, measured on them).
        with encoder_window(model, len(packed) / SAMPLE_RATE, step=1):
            _, _, probs = model.detect_language(packed, language_detection_segments=1)
        for lang, p in probs:
            total[lang] = total.get(lang, 0.0) + p * speech
        seconds += speech
        if seconds >= options.sure_speech and max(total.values()) >= options.sure * seconds:
            break
    if not seconds:
        return {}, 0.0
    ranked = sorted(total.items(), key=lambda kv: -kv[1])[: options.keep]
    return {lang: round(p / seconds, 4) for lang, p in ranked}, seconds


def decide(
    own: Mapping[str, float], others: Sequence[Mapping[str, float]], options: DetectOptions = DetectOptions()
) -> tuple[str, float] | None:
    """The track's language and its own probability; None without any evidence.

    Among the languages the track finds plausible, each is scored by its own
    probability times one plus the room's mean probability of it.
    """
    if not own:
        return None
    best = max(own.values())
    candidates = [lang for lang, p in own.items() if p >= options.plausible * best]

    def room(lang: str) -> float:
        return sum(o.get(lang, 0.0) for o in others) / len(others) if others else 0.0

    chosen = max(candidates, key=lambda lang: (own[lang] * (1 + room(lang)), own[lang]))
    return chosen, own[chosen]
