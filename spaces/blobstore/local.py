"""Blob store in a local directory: the embedded default."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from spaces.blobstore import BlobStat, validate_key
from spaces.exceptions import NotFound


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put(self, key: str, data: bytes, *, content_type: str | None = None, cache_control: str | None = None) -> None:
        with self._atomic(key) as out:
            out.write(data)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        with self._atomic(key) as out, path.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)

    @contextmanager
    def _atomic(self, key: str) -> Iterator[BinaryIO]:
        """Write beside the target, fsync, then rename: readers and crashes see
        the old object or the whole new one."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as e:
            raise NotFound(f"no blob {key!r}") from e

    def get_range(self, key: str, start: int, end: int) -> bytes:
        try:
            with self._path(key).open("rb") as f:
                f.seek(start)
                return f.read(end - start + 1)
        except FileNotFoundError as e:
            raise NotFound(f"no blob {key!r}") from e

    def download(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self._path(key), path)
        except FileNotFoundError as e:
            raise NotFound(f"no blob {key!r}") from e

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as e:
            raise NotFound(f"no blob {key!r}") from e

    def stat(self, key: str) -> BlobStat:
        try:
            st = self._path(key).stat()
        except FileNotFoundError as e:
            raise NotFound(f"no blob {key!r}") from e
        return BlobStat(size=st.st_size, etag=file_etag(st))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[str]:
        # Walk only the deepest directory the prefix names, not the whole store.
        base = self.root / prefix.rpartition("/")[0]
        if not base.is_dir():
            return
        keys = (
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        yield from sorted(k for k in keys if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        for key in list(self.list(prefix)):
            self.delete(key)

    def presigned_url(self, key: str, *, expires: int) -> str | None:
        return None

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def file_etag(st: os.stat_result) -> str:
    """A stored file's tag, from its stat alone.

    Every write is a new file renamed into place, so a new inode and mtime
    even when the size is unchanged; hashing them beats reading the file on
    every range request of a replay being seeked through.
    """
    identity = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_dev}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]
