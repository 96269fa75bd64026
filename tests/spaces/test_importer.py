"""Import validation and all-or-nothing storage, over every backend."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from spaces import keys
from spaces.blobstore import BlobStore
from spaces.catalog import Catalog, SpaceFilter
from spaces.exceptions import InvalidInput, StorageError
from spaces.importer import TrackFile, import_space
from spaces.models import SpaceState, Track


def tone(path: Path, seconds: float, rate: int = 44_100) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-ar",
            str(rate),
            str(path),
        ],
        check=True,
    )
    return path


def test_import_stores_segments_on_the_room_clock(blob_store: BlobStore, catalog: Catalog, tmp_path: Path) -> None:
    a = tone(tmp_path / "a.wav", 23.0)
    b = tone(tmp_path / "b.mp3", 4.0, rate=22_050)
    space = import_space(blob_store, catalog, [TrackFile("alice", a), TrackFile("bob", b, offset=2.5)], title="Cards")
    assert catalog.get_space(space.space_id).state is SpaceState.RECORDED
    manifest = json.loads(blob_store.get(keys.manifest(space.space_id)))
    assert [t["speaker"] for t in manifest["tracks"]] == ["alice", "bob"]
    alice = Track.from_dict(json.loads(blob_store.get(keys.track_manifest(space.space_id, "00-alice"))))
    assert [s.seq for s in alice.segments] == [0, 1, 2]
    assert [round(s.offset, 2) for s in alice.segments] == [0.0, 10.0, 20.0]
    assert alice.end == pytest.approx(23.0, abs=0.05)
    bob = Track.from_dict(json.loads(blob_store.get(keys.track_manifest(space.space_id, "01-bob"))))
    assert bob.start == pytest.approx(2.5) and bob.end == pytest.approx(6.5, abs=0.05)
    assert blob_store.get(alice.segments[0].key)[:4] == b"OggS"
    assert space.duration == pytest.approx(23.0, abs=0.05)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"this is not audio at all\n" * 50, "not an audio file")],
)
def test_bad_file_is_named_and_nothing_is_written(
    blob_store: BlobStore, catalog: Catalog, tmp_path: Path, content: bytes, message: str
) -> None:
    good = tone(tmp_path / "good.wav", 1.0)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(InvalidInput, match=f"bad.wav.*{message}"):
        import_space(blob_store, catalog, [TrackFile("a", good), TrackFile("b", bad)], title="x")
    assert list(blob_store.list("spaces/")) == []
    assert catalog.list_spaces(SpaceFilter(), limit=10) == []


class FailingAfter:
    """The real store, failing on the n-th upload (a disk or network fault)."""

    def __init__(self, store: BlobStore, n: int) -> None:
        self.store = store
        self.left = n

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        self.left -= 1
        if self.left < 0:
            raise StorageError("injected upload failure")
        self.store.put_file(key, path, content_type=content_type)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_failure_midway_removes_what_was_stored(blob_store: BlobStore, catalog: Catalog, tmp_path: Path) -> None:
    a = tone(tmp_path / "a.wav", 12.0)
    b = tone(tmp_path / "b.wav", 12.0)
    failing = FailingAfter(blob_store, 3)
    with pytest.raises(StorageError):
        import_space(failing, catalog, [TrackFile("a", a), TrackFile("b", b)], title="x")  # type: ignore[arg-type]
    assert failing.left < 0
    assert list(blob_store.list("spaces/")) == []
    assert catalog.list_spaces(SpaceFilter(), limit=10) == []


@pytest.mark.parametrize(
    "tracks",
    [
        [],
        [TrackFile("a", Path("/nonexistent.wav"))],
        [TrackFile("", Path("x"))],
        [TrackFile("a", Path("x"), offset=-1)],
        [TrackFile("ali\u2028ce", Path("x"))],
        [TrackFile("ali\u0085ce", Path("x"))],
        [TrackFile("ali\nce", Path("x"))],
    ],
)
def test_invalid_arguments(blob_store: BlobStore, catalog: Catalog, tracks: list[TrackFile]) -> None:
    with pytest.raises(InvalidInput):
        import_space(blob_store, catalog, tracks, title="x")


@pytest.mark.parametrize("title", ["", "two\u2028lines", "two\u0085lines", "x" * 201])
def test_titles_are_one_line(blob_store: BlobStore, catalog: Catalog, tmp_path: Path, title: str) -> None:
    with pytest.raises(InvalidInput, match="title"):
        import_space(blob_store, catalog, [TrackFile("a", tone(tmp_path / "a.wav", 1))], title=title)


@pytest.mark.parametrize("name", ["-h", "-version", "concat:a.wav|b.wav"])
def test_file_names_are_never_options_or_protocols(
    blob_store: BlobStore, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """``spaces import x=-h`` imports the file named "-h" (ffprobe was given ``-h``: its help)."""
    monkeypatch.chdir(tmp_path)
    tone(tmp_path / "a.wav", 1)
    tone(tmp_path / "b.wav", 1)
    tone(tmp_path / "source.wav", 2.5).rename(tmp_path / name)
    space = import_space(blob_store, catalog, [TrackFile("x", Path(name))], title="Odd names")
    assert space.duration == pytest.approx(2.5, abs=0.1)
    assert catalog.get_space(space.space_id).speakers == ("x",)
