"""Transcripts per language and per model: WER, real-time factor, language detected.

    .venv/bin/python -m bench.transcripts --languages en,fr,de,es --models tiny.en,base

For each language, a two-speaker space of known sentences in two espeak-ng
voices of that language (cached), with pauses between turns. Each model
runs what the workers run, in this process: per track the language
detection (when the model is multilingual; the room's other track as
evidence), the transcription in the detected language, then the context
pass and assembly. Printed: pooled WER (Whisper's basic normalizer: any
language), wall time as a share of the space's length, and each track's
detected language.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tests.scoring import multilingual_wer
from tests.speech import SENTENCES as ENGLISH
from tests.speech import Space, Utterance, build_space
from transcribe.assemble import TrackWords, assemble
from transcribe.audio import decode
from transcribe.context_pass import context_clips, refine_room
from transcribe.language import decide, detect, speaks_language
from transcribe.levels import levels
from transcribe.model import load_model
from transcribe.transcribe import TranscribeOptions, transcribe

SENTENCES: dict[str, tuple[str, ...]] = {
    "en": ENGLISH[:6],
    "fr": (
        "Bonjour à tous, nous allons écouter la musique ensemble ce soir.",
        "Je voudrais un café et un croissant, s'il vous plaît.",
        "Nous avons écouté des chansons françaises pendant des heures.",
        "La réunion commence demain après le déjeuner.",
        "Les enfants jouent dans le parc près de la maison.",
        "Merci beaucoup pour votre invitation à dîner.",
    ),
    "de": (
        "Wir werden heute Abend mit unseren Freunden Musik hören.",
        "Der Zug in die Stadt fährt jede Stunde vom Bahnhof ab.",
        "Meine Schwester lernt dieses Jahr Klavier spielen.",
        "Die Besprechung beginnt morgen nach dem Mittagessen.",
        "Bitte bring dein Notizbuch zur Sitzung mit.",
        "Wir sollten mehr Kaffee für die Küche bestellen.",
    ),
    "es": (
        "Vamos a escuchar música esta noche con nuestros amigos.",
        "El tren a la ciudad sale cada hora de la estación.",
        "Mi hermana está aprendiendo a tocar el piano este año.",
        "La reunión empieza mañana después del almuerzo.",
        "Por favor trae tu cuaderno a la reunión.",
        "Deberíamos pedir más café para la cocina de la oficina.",
    ),
}
VOICES = {"en": ("en-us+m3", "en-gb+f2"), "fr": ("fr", "fr-be"), "de": ("de", "de+f2"), "es": ("es", "es+m3")}


@dataclass
class Row:
    language: str
    model: str
    wer: float
    rtf: float
    detected: dict[str, str]


def language_space(language: str, out: Path) -> Space:
    utterances = []
    at = 0.5
    for i, text in enumerate(SENTENCES[language]):
        utterances.append(Utterance("a" if i % 2 == 0 else "b", at, text))
        at += 2.0 + len(text.split()) * 0.45
    voices = dict(zip(("a", "b"), VOICES[language], strict=True))
    return build_space(utterances, voices, duration=at + 1.0, out_dir=out / language)


def run(space: Space, language: str, model_name: str, threads: int) -> Row:
    model = load_model(model_name, cpu_threads=threads)
    t0 = time.perf_counter()
    audio = {s: decode(p) for s, p in space.items()}
    lv = {s: levels(a, offset=0.0) for s, a in audio.items()}
    told: dict[str, str] = {}
    if speaks_language(model):
        probs = {s: detect(model, a)[0] for s, a in audio.items()}
        for s in audio:
            decision = decide(probs[s], [p for o, p in probs.items() if o != s])
            told[s] = decision[0] if decision else "en"
    else:
        told = dict.fromkeys(audio, "en")
    tracks, clips = [], []
    for s, a in audio.items():
        options = TranscribeOptions(language=told[s])
        words = transcribe(
            model, a, speaker=s, offset=0.0, options=options, others=[v for o, v in lv.items() if o != s]
        )
        tracks.append(TrackWords(s, words, lv[s]))
        clips.append(context_clips(a, words, offset=0.0) if words else [])
    turns = assemble(refine_room(model, tracks, clips, languages=told))
    seconds = time.perf_counter() - t0
    said = " ".join(w.text for t in turns for w in t.words)
    truth = " ".join(w.text for w in sorted(space.words(), key=lambda w: w.start))
    return Row(language, model_name, multilingual_wer(truth, said), seconds / space.duration, told)


def main(languages: list[str], models: list[str], threads: int, out: Path) -> None:
    rows = []
    for language in languages:
        space = language_space(language, out)
        for model_name in models:
            row = run(space, language, model_name, threads)
            rows.append(row)
            print(
                f"{language} {model_name}: WER {row.wer:.3f}, {row.rtf:.3f} x real time, detected {row.detected}",
                flush=True,
            )
    print("\nlanguage | model | WER | wall / length | language per track (right?)")
    print("---|---|---|---|---")
    for r in rows:
        right = all(v == r.language for v in r.detected.values())
        print(
            f"{r.language} | {r.model} | {r.wer:.3f} | {r.rtf:.3f} x | "
            f"{', '.join(f'{k}={v}' for k, v in sorted(r.detected.items()))} ({'yes' if right else 'no'})"
        )
