"""Synthetic speech with known words and known times, for tests and benches.

espeak-ng is driven through its C library (``libespeak-ng.so.1``, installed
with the ``espeak-ng`` Debian package) rather than its command line, because
the library reports a WORD event with the sample position of every word: that
gives word-level truth for natural, whole-sentence synthesis (the command line
only gives the audio). Festival and Flite speak too (:mod:`tests.engines`, a
voice named ``engine:name``): other engines, other sounds.

Times here are on the room clock, like everywhere in the project. An
:class:`Utterance` is placed so that its first audible sample is at
``start``; every true word carries the start of its first audible sample
and the end of its last one.

Typical use::

    space = build_space(
        [Utterance("alice", 1.0, "Which card did you draw?"),
         Utterance("bob", 3.5, "The ten of clubs.")],
        {"alice": VOICES[0], "bob": VOICES[1]},
        duration=8.0,
        out_dir=tmp_path,
        bleed={"bob": ("alice", -18.0)},
    )
    space["alice"]          # Path of alice's track file (a dict of speaker -> Path)
    space.truth["bob"]      # bob's true words (spaces.models.Word), room clock

Synthesis and whole spaces are cached under ``$SPEECH_CACHE`` (default: a
directory in the system temp dir), keyed by their content, so repeated test
runs cost nothing.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from spaces.models import Word
from tests import engines

SAMPLE_RATE = 16_000

#: Four voices that sound distinct from each other and that Whisper tiny.en
#: recognizes well (checked by ear and by WER on the bench sentences).
VOICES: tuple[str, ...] = ("en-us+m3", "en-gb+f2", "en+m5", "en-us+f4")

#: Sentences tiny.en transcribes (nearly) perfectly in every voice above.
SENTENCES: tuple[str, ...] = (
    "The weather was lovely this morning, so we walked down to the river.",
    "Our team finished the project two weeks ahead of schedule.",
    "Please remember to bring your notebook to the meeting tomorrow.",
    "We should probably order more coffee for the office kitchen.",
    "My sister is learning to play the piano this year.",
    "The train to the city leaves every hour from platform four.",
    "I read a wonderful book about the history of the ocean.",
    "Let us start with the budget and then talk about hiring.",
)

_CACHE_VERSION = "2"
_SILENCE = 10 ** (-50 / 20)  # a synthesized sample below -50 dBFS is silence
_ESPEAK_EVENT_END_OF_LIST = 0
_ESPEAK_EVENT_WORD = 1


@dataclass(frozen=True)
class Utterance:
    """What one speaker says, and when its first sound starts (room clock)."""

    speaker: str
    start: float
    text: str


@dataclass(frozen=True)
class Speech:
    """One synthesized utterance at 16 kHz, trimmed of leading/trailing silence.

    ``words`` are ``(start, end, text)`` in seconds from the first sample.
    """

    samples: np.ndarray
    words: tuple[tuple[float, float, str], ...]

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


@dataclass(frozen=True)
class TrackTruth:
    """A synthesized track file and the words said on it (room clock)."""

    speaker: str
    path: Path
    words: tuple[Word, ...]
    start: float = 0.0
    """Room-clock time of the file's first sample (a late joiner's track starts late)."""
    utterances: tuple[Utterance, ...] = ()
    ends: tuple[float, ...] = ()
    """Room-clock end of each utterance (its last audible sample)."""


class Space(dict[str, Path]):
    """Speaker -> track file, plus the truth of what was said on each track.

    A plain ``dict[str, Path]`` for callers that only want the files.
    """

    def __init__(self, tracks: Mapping[str, TrackTruth], *, duration: float, mix: Path) -> None:
        super().__init__({speaker: t.path for speaker, t in tracks.items()})
        self.tracks = dict(tracks)
        self.duration = duration
        self.mix = mix
        """The room's mix: every speaker's own voice summed (no bleed), as a WAV."""

    @property
    def truth(self) -> dict[str, tuple[Word, ...]]:
        return {speaker: t.words for speaker, t in self.tracks.items()}

    @property
    def starts(self) -> dict[str, float]:
        """Room-clock offset of each track file's first sample."""
        return {speaker: t.start for speaker, t in self.tracks.items()}

    def words(self) -> list[Word]:
        """Every true word of the room, in time order."""
        return sorted((w for t in self.tracks.values() for w in t.words), key=lambda w: w.start)


# --- espeak-ng through its library ------------------------------------------


class _Event(ctypes.Structure):
    # espeak_EVENT from speak_lib.h (the union ``id`` is 8 bytes).
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


class _Voice(ctypes.Structure):
    # espeak_VOICE from speak_lib.h.
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Espeak:
    """The process-wide espeak-ng engine (the C library keeps global state)."""

    _AUDIO_OUTPUT_SYNCHRONOUS = 2
    _POS_CHARACTER = 1
    _CHARS_UTF8 = 1
    _RATE = 1

    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libespeak-ng.so.1")
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.rate = int(self.lib.espeak_Initialize(self._AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0))
        if self.rate <= 0:
            raise RuntimeError("espeak-ng could not be initialized")
        self.lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int]] = []
        # Keep a reference: ctypes callbacks must outlive their registration.
        self._callback = _Callback(self._on_synth)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: ctypes._Pointer[_Event]) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _ESPEAK_EVENT_END_OF_LIST:
            if events[i].type == _ESPEAK_EVENT_WORD:
                # text_position is 1-based, in characters of the input.
                self._events.append((events[i].text_position - 1, events[i].sample))
            i += 1
        return 0

    def _set_voice(self, voice: str) -> None:
        if self.lib.espeak_SetVoiceByName(voice.encode()) == 0:
            return
        # What the espeak-ng command line does next: "en-gb+f2" is a language
        # (plus variant), not a voice name.
        wanted = _Voice(languages=voice.encode())
        if self.lib.espeak_SetVoiceByProperties(ctypes.byref(wanted)) != 0:
            raise ValueError(f"unknown espeak-ng voice {voice!r}")

    def synth(self, text: str, voice: str, rate: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Samples (int16 at ``self.rate``) and (character index, sample) word events."""
        with self.lock:
            self._chunks, self._events = [], []
            self._set_voice(voice)
            self.lib.espeak_SetParameter(self._RATE, rate, 0)
            data = text.encode()
            # With espeakCHARS_UTF8, event positions count characters, not
            # bytes, so accented text (French, German, Spanish) maps back too.
            if self.lib.espeak_Synth(data, len(data) + 1, 0, self._POS_CHARACTER, 0, self._CHARS_UTF8, None, None) != 0:
                raise RuntimeError(f"espeak-ng failed on {text!r}")
            self.lib.espeak_Synchronize()
            chunks = self._chunks or [np.zeros(0, dtype=np.int16)]
            return np.concatenate(chunks), list(self._events)


_ENGINE: _Espeak | None = None


def _engine() -> _Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Espeak()
    return _ENGINE


def cache_dir() -> Path:
    path = Path(os.environ.get("SPEECH_CACHE") or Path(tempfile.gettempdir()) / "audio-spaces-speech")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([_CACHE_VERSION, *parts], default=str).encode()).hexdigest()[:24]


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """int16 mono at ``rate`` -> float32 at 16 kHz, with FFmpeg's resampler."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    out = [f.to_ndarray().reshape(-1) for f in (*resampler.resample(frame), *resampler.resample(None))]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)


def _audible(samples: np.ndarray, lo: int, hi: int) -> tuple[int, int] | None:
    """First and one-past-last audible sample in ``samples[lo:hi]`` (10 ms smoothing)."""
    part = np.abs(samples[lo:hi])
    if part.size == 0:
        return None
    win = SAMPLE_RATE // 100
    env = np.convolve(part, np.ones(win) / win, mode="same")
    loud = np.flatnonzero(env > _SILENCE)
    if loud.size == 0:
        return None
    return lo + int(loud[0]), lo + int(loud[-1]) + 1


def synthesize(text: str, voice: str, *, rate: int = 165) -> Speech:
    """Speak ``text`` in ``voice``: an espeak-ng voice (at ``rate`` words a
    minute), or another engine's (``festival:kal_diphone``, ``flite:awb``:
    :mod:`tests.engines`, at its own pace; ``rate`` is then only part of
    the cache key).

    Each word runs from its first audible sample to its last within the time
    the engine gives it (espeak-ng's words said as one group share the
    group's time by their length).
    """
    key = _key("speech", text, voice, rate)
    cached = cache_dir() / f"speech-{key}.npz"
    if cached.exists():
        with np.load(cached) as data:
            words = json.loads(str(data["words"]))
            return Speech(samples=data["samples"], words=tuple((float(s), float(e), str(t)) for s, e, t in words))
    if ":" in voice:
        samples, words = _engine_words(text, voice)
    else:
        samples, words = _espeak_words(text, voice, rate)
    if not words:
        raise ValueError(f"{voice} said nothing audible for {text!r}")
    first, last = words[0][0], words[-1][1]
    trimmed = samples[first:last].copy()
    speech = Speech(
        samples=trimmed,
        words=tuple(((s - first) / SAMPLE_RATE, (e - first) / SAMPLE_RATE, t) for s, e, t in words),
    )
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, samples=speech.samples, words=np.array(json.dumps(speech.words)))
    tmp.replace(cached)
    return speech


def _engine_words(text: str, voice: str) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Another engine's samples at 16 kHz (:mod:`tests.engines`), and each token's audible samples
    within its phones' time."""
    raw, rate, spans = engines.speak(text, voice)
    samples = _resample(raw, rate)
    words: list[tuple[int, int, str]] = []
    for token, span in zip(text.split(), spans, strict=True):
        audible = (
            None if span is None else _audible(samples, round(span[0] * SAMPLE_RATE), round(span[1] * SAMPLE_RATE))
        )
        if audible is not None:
            words.append((*audible, token))
    return samples, words


def _espeak_words(text: str, voice: str, rate: int) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """espeak-ng's samples at 16 kHz, and each token's audible samples, from its WORD events.

    A word's start is its first audible sample after its event (a stop
    consonant's closure is silent); its end is its last audible sample
    before the next word's event.
    """
    raw, events = _engine().synth(text, voice, rate)
    scale = SAMPLE_RATE / _engine().rate
    samples = _resample(raw, _engine().rate)
    # espeak phrases some function words together ("to be", "of the") under
    # one WORD event; such a group's audible time is shared among its tokens
    # in proportion to their length.
    groups: list[tuple[int, list[str]]] = []
    for lo, hi, token in _tokens(text):
        positions = [int(sample * scale) for pos, sample in events if lo <= pos < hi]
        if positions:
            groups.append((min(positions), [token]))
        elif groups:
            groups[-1][1].append(token)
    bounds = [s for s, _ in groups[1:]] + [len(samples)]
    words: list[tuple[int, int, str]] = []
    for (begin, tokens), end in zip(groups, bounds, strict=True):
        audible = _audible(samples, begin, end)
        if audible is None:
            continue
        weights = np.cumsum([0] + [len(t) for t in tokens]) / sum(len(t) for t in tokens)
        cuts = [round(audible[0] + (audible[1] - audible[0]) * w) for w in weights]
        words.extend((cuts[i], cuts[i + 1], t) for i, t in enumerate(tokens))
    return samples, words


def _tokens(text: str) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    pos = 0
    for token in text.split():
        lo = text.index(token, pos)
        pos = lo + len(token)
        out.append((lo, pos, token))
    return out


# --- tracks and spaces -------------------------------------------------------


def render_track(
    utterances: Sequence[Utterance], *, voice: str, duration: float, start: float = 0.0, level_db: float = 0.0
) -> tuple[np.ndarray, tuple[Word, ...], tuple[float, ...]]:
    """One speaker's utterances placed on a silent track.

    Returns the samples (first sample at room time ``start``), the true
    words and each utterance's end, both on the room clock.
    """
    n = max(0, round((duration - start) * SAMPLE_RATE))
    track = np.zeros(n, dtype=np.float32)
    gain = 10 ** (level_db / 20)
    words: list[Word] = []
    ends: list[float] = []
    for u in utterances:
        speech = synthesize(u.text, voice)
        at = round((u.start - start) * SAMPLE_RATE)
        if at < 0 or at + len(speech.samples) > n:
            raise ValueError(f"utterance at {u.start}s does not fit the track [{start}, {duration}]")
        track[at : at + len(speech.samples)] += speech.samples * gain
        origin = start + at / SAMPLE_RATE
        words.extend(Word(origin + s, origin + e, t, u.speaker) for s, e, t in speech.words)
        ends.append(origin + speech.duration)
    return track, tuple(words), tuple(ends)


def write_audio(path: Path, samples: np.ndarray, *, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> Path:
    """Write 16 kHz float samples to ``path``; the format follows the suffix.

    ``.wav`` is 16-bit PCM, ``.ogg``/``.opus`` is Opus, anything else is
    left to ffmpeg. ``sample_rate``/``channels`` other than 16 kHz mono are
    produced by ffmpeg's resampler (to test decoding of 44.1/48 kHz stereo).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    codec: list[str] = []
    if path.suffix in (".ogg", ".opus"):
        codec = ["-c:a", "libopus", "-b:a", "32k"]
    elif path.suffix == ".wav":
        codec = ["-c:a", "pcm_s16le"]
    clipped = np.clip(samples, -1.0, 1.0).astype("<f4")
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "f32le",
            "-ar",
            str(SAMPLE_RATE),
            "-ac",
            "1",
            "-i",
            "pipe:0",
            "-ar",
            str(sample_rate),
            "-ac",
            str(channels),
            *codec,
            str(path),
        ],
        input=clipped.tobytes(),
        check=True,
    )
    return path


def synthesize_track(
    utterances: Sequence[Utterance],
    *,
    voice: str,
    duration: float,
    path: Path,
    sample_rate: int = SAMPLE_RATE,
    level_db: float = 0.0,
    start: float = 0.0,
) -> TrackTruth:
    """Write one speaker's track file and return what is said on it.

    Args:
        utterances: This speaker's utterances (room clock).
        voice: An espeak-ng voice, e.g. ``VOICES[0]``.
        duration: Room-clock end of the track.
        path: Where to write; the suffix picks the format (see :func:`write_audio`).
        sample_rate: Sample rate of the written file.
        level_db: Gain applied to the speech.
        start: Room-clock time of the file's first sample (a late joiner).
    """
    speakers = {u.speaker for u in utterances}
    if len(speakers) > 1:
        raise ValueError(f"one speaker per track, got {sorted(speakers)}")
    samples, words, ends = render_track(utterances, voice=voice, duration=duration, start=start, level_db=level_db)
    write_audio(path, samples, sample_rate=sample_rate)
    return TrackTruth(
        speaker=next(iter(speakers), ""),
        path=path,
        words=words,
        start=start,
        utterances=tuple(utterances),
        ends=ends,
    )


@dataclass(frozen=True)
class _SpacePlan:
    utterances: tuple[Utterance, ...]
    voices: tuple[tuple[str, str], ...]
    duration: float
    bleed: tuple[tuple[str, str, float], ...] = ()
    starts: tuple[tuple[str, float], ...] = ()
    suffix: str = ".wav"
    levels: tuple[tuple[str, float], ...] = field(default=())
    noise_db: float | None = None
    phone: tuple[str, ...] = ()


def build_space(
    utterances: Sequence[Utterance],
    voices: Mapping[str, str],
    *,
    duration: float,
    out_dir: Path,
    bleed: Mapping[str, tuple[str, float]] | None = None,
    starts: Mapping[str, float] | None = None,
    levels_db: Mapping[str, float] | None = None,
    suffix: str = ".wav",
    noise_db: float | None = None,
    phone: Sequence[str] = (),
) -> Space:
    """Write one track per speaker (plus the room mix) into ``out_dir``.

    Args:
        utterances: Everything said in the room, any order, any speakers.
        voices: Speaker -> espeak-ng voice; every speaker gets a track, even a silent one.
        duration: Room-clock length of the space.
        out_dir: Where the files go (``{speaker}{suffix}`` and ``mix.wav``).
        bleed: ``{"bob": ("alice", -18.0)}`` mixes alice's voice into bob's
            track 18 dB below alice's own level (cross-talk on bob's microphone).
        starts: Room-clock start of a track file (a late joiner); the speaker
            must not speak before it.
        levels_db: Gain of a speaker's own voice on their track.
        suffix: Track file format (``.wav``, or ``.ogg`` for Opus at 32 kb/s from 16 kHz).
        noise_db: Room noise on every microphone at this level (dBFS RMS), each
            its own; the mix carries all of it, as a recording of the room would.
        phone: Speakers who call in by phone: their voice band-limited to 300-3400 Hz.

    Returns:
        A :class:`Space`: ``dict`` of speaker -> track path, with the truth.
    """
    bleed = dict(bleed or {})
    starts = dict(starts or {})
    levels_db = dict(levels_db or {})
    plan = _SpacePlan(
        utterances=tuple(sorted(utterances, key=lambda u: (u.start, u.speaker))),
        voices=tuple(sorted(voices.items())),
        duration=duration,
        bleed=tuple(sorted((b, a, db) for b, (a, db) in bleed.items())),
        starts=tuple(sorted(starts.items())),
        suffix=suffix,
        levels=tuple(sorted(levels_db.items())),
        noise_db=noise_db,
        phone=tuple(sorted(phone)),
    )
    cached = cache_dir() / f"space-{_key(repr(plan))}"
    if not (cached / "truth.json").exists():
        _render_space(plan, cached)
    return _load_space(cached, out_dir, plan)


def _render_space(plan: _SpacePlan, into: Path) -> None:
    tmp = into.with_name(f"{into.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    voices = dict(plan.voices)
    unknown = {u.speaker for u in plan.utterances} - voices.keys()
    if unknown:
        raise ValueError(f"no voice for {sorted(unknown)}")
    starts = dict(plan.starts)
    levels = dict(plan.levels)
    own: dict[str, tuple[np.ndarray, tuple[Word, ...], tuple[float, ...]]] = {}
    n = round(plan.duration * SAMPLE_RATE)
    for speaker, voice in voices.items():
        mine = [u for u in plan.utterances if u.speaker == speaker]
        # Rendered from room zero so that bleed and the mix line up sample for sample.
        own[speaker] = render_track(mine, voice=voice, duration=plan.duration, level_db=levels.get(speaker, 0.0))
        if speaker in plan.phone:
            own[speaker] = (phone_band(own[speaker][0]), *own[speaker][1:])
    rng = np.random.default_rng(int(_key(repr(plan))[:8], 16))
    noise = {
        speaker: (room_noise(rng, n, plan.noise_db) if plan.noise_db is not None else np.zeros(n, dtype=np.float32))
        for speaker in voices
    }
    mix = np.zeros(n, dtype=np.float32)
    for speaker, (samples, _, _) in own.items():
        mix[: len(samples)] += samples
        mix += noise[speaker]
    write_audio(tmp / "mix.wav", mix)
    truth: dict[str, dict[str, object]] = {}
    for speaker in voices:
        samples = own[speaker][0] + noise[speaker][: len(own[speaker][0])]
        for victim, source, db in plan.bleed:
            if victim == speaker:
                samples += own[source][0] * 10 ** (db / 20)
        start = starts.get(speaker, 0.0)
        samples = samples[round(start * SAMPLE_RATE) :]
        write_audio(tmp / f"{speaker}{plan.suffix}", samples)
        _, words, ends = own[speaker]
        if words and words[0].start < start:
            raise ValueError(f"{speaker} speaks at {words[0].start}s, before joining at {start}s")
        truth[speaker] = {"start": start, "words": [w.to_dict() for w in words], "ends": list(ends)}
    (tmp / "truth.json").write_text(json.dumps(truth))
    # Another test process may render the same space at the same time: the
    # first complete rendering stays, a half-written one is replaced.
    if not (into / "truth.json").exists():
        shutil.rmtree(into, ignore_errors=True)
    try:
        tmp.rename(into)
    except OSError:
        shutil.rmtree(tmp)


def phone_band(samples: np.ndarray) -> np.ndarray:
    """A voice as a telephone carries it: nothing below 300 Hz or above 3400 Hz."""
    spectrum = np.fft.rfft(samples)
    hz = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    spectrum[(hz < 300) | (hz > 3400)] = 0
    return np.fft.irfft(spectrum, len(samples)).astype(np.float32)


def room_noise(rng: np.random.Generator, n: int, db: float) -> np.ndarray:
    """Brown-ish room hum and hiss at ``db`` dBFS RMS (more energy low, like fans and traffic)."""
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    hz = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum /= np.sqrt(np.maximum(hz, 50.0) / 50.0)
    noise = np.fft.irfft(spectrum, n)
    noise *= 10 ** (db / 20) / max(float(np.sqrt(np.mean(noise**2))), 1e-12)
    return noise.astype(np.float32)


def _load_space(cached: Path, out_dir: Path, plan: _SpacePlan) -> Space:
    out_dir.mkdir(parents=True, exist_ok=True)
    truth = json.loads((cached / "truth.json").read_text())
    tracks: dict[str, TrackTruth] = {}
    for speaker, data in truth.items():
        path = out_dir / f"{speaker}{plan.suffix}"
        shutil.copyfile(cached / path.name, path)
        tracks[speaker] = TrackTruth(
            speaker=speaker,
            path=path,
            words=tuple(Word.from_dict(w) for w in data["words"]),
            start=float(data["start"]),
            utterances=tuple(u for u in plan.utterances if u.speaker == speaker),
            ends=tuple(data["ends"]),
        )
    mix = out_dir / "mix.wav"
    shutil.copyfile(cached / "mix.wav", mix)
    return Space(tracks, duration=plan.duration, mix=mix)


# --- scoring against the truth -----------------------------------------------


@functools.cache
def normalizer() -> Callable[[str], str]:
    """Whisper's English text normalizer (numbers, spelling, punctuation)."""
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()  # type: ignore[no-any-return]


def word_error_rate(reference: Sequence[Word] | str, hypothesis: Sequence[Word] | str) -> float:
    """WER after Whisper's English normalizer; an empty reference counts insertions."""
    import jiwer

    norm = normalizer()
    ref = norm(reference if isinstance(reference, str) else " ".join(w.text for w in reference))
    hyp = norm(hypothesis if isinstance(hypothesis, str) else " ".join(w.text for w in hypothesis))
    if not ref.split():
        return float(len(hyp.split()))
    return float(jiwer.wer(ref, hyp))


def match_words(truth: Sequence[Word], hypothesis: Sequence[Word], *, within: float = 1.0) -> list[tuple[Word, Word]]:
    """Pairs (true word, recognized word) with the same normalized text, close in time.

    Each recognized word takes the nearest unpaired true word that reads the
    same and starts within ``within`` seconds, whatever its speaker: that is
    what makes speaker attribution measurable.
    """
    norm = normalizer()
    by_text: dict[str, list[Word]] = {}
    for w in truth:
        by_text.setdefault(norm(w.text), []).append(w)
    used: set[int] = set()
    pairs: list[tuple[Word, Word]] = []
    for h in sorted(hypothesis, key=lambda w: w.start):
        if not norm(h.text):
            continue
        candidates = [
            t for t in by_text.get(norm(h.text), ()) if id(t) not in used and abs(t.start - h.start) <= within
        ]
        if candidates:
            best = min(candidates, key=lambda t: abs(t.start - h.start))
            used.add(id(best))
            pairs.append((best, h))
    return pairs
