"""Speech engines beside espeak-ng, each word with its time: Festival and Flite.

espeak-ng's formant voices are one family of synthetic speech, and Whisper
may hear them unlike any person. These speak by other means (Debian's
``festival`` with ``festvox-kallpc16k``, ``festvox-kdlpc16k`` and
``festvox-us-slt-hts``, and ``flite``):

- ``festival:kal_diphone``, ``festival:ked_diphone``: two American men,
  diphone synthesis (recorded speech cut at phone boundaries);
- ``festival:cmu_us_slt_arctic_hts``: an American woman, HTS (a statistical
  model of her speech);
- ``flite:awb``, ``flite:rms``, ``flite:slt``: a Scottish man, an American
  man and woman, Flite's clustergen voices.

Both engines report every phone's end time. Festival also says which token
of the text (what ``str.split`` gives) each phone belongs to; Flite does
not, so its phones are shared out in order by the phones each token has
when said alone, which must be the phones said in context but for vowels
("a" said "ey" alone, "ax" in a sentence); a text where they differ
otherwise ("$5 million" said "five million dollars") is refused. A token
said as words that belong to another (Festival's "$5" takes "million") has
no time of its own. Festival runs once a sentence, Flite once and once a
new token (0.1-0.3 s a sentence); :func:`tests.speech.synthesize` caches
what they say.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

Spans = list[tuple[float, float] | None]
"""Per token of ``text.split()``: ``(start, end)`` seconds of its phones, None if it has none."""

# Each token of the text, then each phone: its end and its token (0 for a pause).
_FESTIVAL = """
(voice_{voice})
(set! utt (utt.synth (Utterance Text {text})))
(utt.save.wave utt {path} 'riff)
(set! tok (utt.relation.first utt 'Token))
(while tok (format t "T\\t%s\\n" (item.feat tok "id")) (set! tok (item.next tok)))
(mapcar (lambda (seg) (format t "S\\t%s\\t%s\\n" (item.feat seg "end")
                              (item.feat seg "R:SylStructure.parent.parent.R:Token.parent.id")))
        (utt.relation.items utt 'Segment))
"""
_VOWELS = tuple("aeiou")
"""First letters of the vowels among Flite's phone names (``aa``, ``ax``, ``iy``...)."""


def speak(text: str, voice: str) -> tuple[np.ndarray, int, Spans]:
    """``text`` said by ``voice`` (``engine:name``): int16 mono samples, their rate, each token's span."""
    engine, _, name = voice.partition(":")
    if engine not in ENGINES:
        raise ValueError(f"unknown speech engine in {voice!r} (known: {', '.join(ENGINES)})")
    with tempfile.TemporaryDirectory(prefix=f"{engine}-") as tmp:
        path = Path(tmp) / "speech.wav"
        spans = ENGINES[engine](text, name, path)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return samples, rate, spans


def _run(what: str, args: list[str], *, stdin: str | None = None) -> str:
    """``args``' output; an exit status or a Scheme error (Festival exits 0 on one) raises, with ``what``."""
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or "SIOD ERROR" in done.stderr:
        raise ValueError(f"{what}: {args[0]} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def _festival(text: str, voice: str, path: Path) -> Spans:
    # An unknown voice is a Scheme error (``voice_NAME`` unbound), raised by _run.
    script = _FESTIVAL.format(voice=voice, text=_string(text), path=_string(str(path)))
    out = _run(f"festival:{voice} saying {text!r}", ["festival", "--pipe"], stdin=script)
    tokens: list[str] = []
    spans: dict[str, tuple[float, float]] = {}
    start = 0.0
    for line in out.splitlines():
        kind, *fields = line.split("\t")
        if kind == "T":
            tokens.append(fields[0])
        elif kind == "S":
            end, token = float(fields[0]), fields[1]
            if token != "0":
                spans[token] = (spans.get(token, (start, end))[0], end)
            start = end
    if len(tokens) != len(text.split()):
        raise ValueError(f"festival read {len(tokens)} tokens in {text!r}, not {len(text.split())}")
    return [spans.get(t) for t in tokens]


def _string(text: str) -> str:
    """``text`` as a Scheme string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _flite(text: str, voice: str, path: Path) -> Spans:
    if voice not in _flite_voices():
        # Flite says it in its default voice otherwise, without a word.
        raise ValueError(f"unknown flite voice {voice!r} (known: {', '.join(_flite_voices())})")
    out = _run(f"flite:{voice} saying {text!r}", ["flite", "-voice", voice, "-psdur", "-t", text, "-o", str(path)])
    phones = [(name, float(end)) for item in out.split() for name, _, end in [item.rpartition(":")]]
    said = [(name, start, end) for (_, start), (name, end) in zip([("", 0.0), *phones[:-1]], phones, strict=True)]
    said = [p for p in said if p[0] != "pau"]
    alone = [_flite_phones(token, voice) for token in text.split()]
    expected = [p for token in alone for p in token]
    if len(expected) != len(said) or any(
        a != b and not (a.startswith(_VOWELS) and b.startswith(_VOWELS))
        for a, (b, _, _) in zip(expected, said, strict=False)
    ):
        heard = " ".join(p for p, _, _ in said)
        raise ValueError(f"flite:{voice} said {heard!r} for {text!r}, its words alone {' '.join(expected)!r}")
    spans: Spans = []
    at = 0
    for token in alone:
        spans.append((said[at][1], said[at + len(token) - 1][2]) if token else None)
        at += len(token)
    return spans


@functools.cache
def _flite_voices() -> tuple[str, ...]:
    """The voices Flite has (``flite -lv``: "Voices available: kal awb ...")."""
    return tuple(_run("flite's voices", ["flite", "-lv"]).split(":", 1)[-1].split())


@functools.cache
def _flite_phones(token: str, voice: str) -> tuple[str, ...]:
    """The phones Flite says for ``token`` alone."""
    out = _run(f"flite:{voice} saying {token!r}", ["flite", "-voice", voice, "-ps", "-t", token, "-o", "none"])
    return tuple(p for p in out.split() if p != "pau")


ENGINES: dict[str, Callable[[str, str, Path], Spans]] = {"festival": _festival, "flite": _flite}
"""Engine name -> a function writing ``text`` said by a voice to a WAV file, returning each token's span."""
