"""Models that install with the project: short names, parts joined once and verified, clear errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transcribe.exceptions import ModelError
from transcribe.model import PACKAGED, Packaged, resolve_model


def test_base_is_joined_once_into_the_cache_with_its_checksum(tmp_path: Path) -> None:
    where = Path(resolve_model("base", cache_dir=tmp_path))
    assert where.parent == tmp_path
    model = where / "model.bin"
    assert model.stat().st_size == PACKAGED["base"].size
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in where.iterdir()}
    stamp = model.stat().st_mtime_ns
    # Started again: the same directory, not joined a second time.
    assert Path(resolve_model("base", cache_dir=tmp_path)) == where
    assert model.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [where.name]  # no half-joined leftovers


def _fake_model(root: Path, name: str, parts: list[bytes], *, tokenizer: bool = True) -> Packaged:
    """Packages ``{name}_1`` and ``{name}_2`` on sys.path holding ``parts`` of a model.bin."""
    for i, data in enumerate(parts, 1):
        folder = root / f"{name}_{i}" / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
        (folder / f"model.bin.part{i}").write_bytes(data)
    first = root / f"{name}_1" / "data"
    (first / "config.json").write_text("{}")
    if tokenizer:
        (first / "tokenizer.json").write_text("{}")
    whole = b"".join(parts)
    return Packaged(
        packages=(f"{name}-1", f"{name}-2"),
        parts=tuple((f"{name}_{i}", f"data/model.bin.part{i}") for i in range(1, len(parts) + 1)),
        files_from=f"{name}_1",
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
    )


def test_parts_that_do_not_match_their_checksum_are_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    spec = _fake_model(tmp_path / "pkgs", "fakemodel", [b"abc" * 100, b"def" * 100])
    corrupt = Packaged(**{**spec.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(PACKAGED, "fake", corrupt)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="'fake'.*SHA-256"):
        resolve_model("fake", cache_dir=cache)
    assert list(cache.iterdir()) == []  # nothing half-joined is ever used
    monkeypatch.setitem(PACKAGED, "fake", spec)
    assert (Path(resolve_model("fake", cache_dir=cache)) / "model.bin").read_bytes() == b"abc" * 100 + b"def" * 100


def test_parts_missing_or_short_are_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    spec = _fake_model(tmp_path / "pkgs", "shortmodel", [b"x" * 10, b"y" * 10])
    monkeypatch.setitem(PACKAGED, "short", Packaged(**{**spec.__dict__, "size": 99}))
    with pytest.raises(ModelError, match="'short'.*incomplete"):
        resolve_model("short", cache_dir=tmp_path / "cache")
    spec = _fake_model(tmp_path / "pkgs", "notok", [b"x", b"y"], tokenizer=False)
    monkeypatch.setitem(PACKAGED, "notok", spec)
    with pytest.raises(ModelError, match="'notok'.*incomplete.*tokenizer.json"):
        resolve_model("notok", cache_dir=tmp_path / "cache")


def test_small_as_published_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="'small'"):
        resolve_model("small", cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("variable", "args"),
    [("WHISPER_MODEL", ["--burst"]), ("SPACES_LIVE_MODEL", ["--live", "--burst"])],
)
def test_a_worker_with_an_unknown_model_stops_at_start_naming_it(
    tmp_path: Path, variable: str, args: list[str]
) -> None:
    env = {
        **os.environ,
        variable: "no-such-model-anywhere",
        "HF_HUB_OFFLINE": "1",
        "SPACES_DATA_DIR": str(tmp_path),
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "spaces.cli", "worker", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "no-such-model-anywhere" in done.stderr and "Traceback" not in done.stderr
