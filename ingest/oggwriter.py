"""Ogg/Opus files written page by page, and read back after a crash.

Why our own writer: the SFU records packets exactly as received (no decode,
no re-encode), flushes them to the spool in whole Ogg pages with one
``os.write`` each, and must be able to tell, after a SIGKILL, how much of a
file is sound. A page is either wholly in the file or not at all (the
kernel keeps what ``write`` returned even if the process dies), so a
killed recorder leaves a valid, playable file that ends at the last page.

Layout follows RFC 7845: page 0 holds ``OpusHead`` (BOS), page 1
``OpusTags``, then audio pages whose granule position is the number of
48 kHz samples decoded so far (pre-skip included).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

_CAPTURE = b"OggS"
_HEADER = struct.Struct("<4sBBqIIIB")
_FLAG_CONTINUED = 0x01
_FLAG_BOS = 0x02
_FLAG_EOS = 0x04
_MAX_SEGMENTS = 255


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, not reflected)."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def _lacing(length: int) -> bytes:
    return bytes([255] * (length // 255) + [length % 255])


def build_page(packets: list[bytes], *, serial: int, sequence: int, granule: int, flags: int = 0) -> bytes:
    """One complete page holding whole ``packets`` (the caller keeps them under 255 segments)."""
    table = b"".join(_lacing(len(p)) for p in packets)
    if len(table) > _MAX_SEGMENTS:
        raise ValueError("too many segments for one Ogg page")
    header = _HEADER.pack(_CAPTURE, 0, flags, granule, serial, sequence, 0, len(table))
    page = bytearray(header + table + b"".join(packets))
    struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
    return bytes(page)


def opus_head(*, channels: int, pre_skip: int = 0, input_rate: int = 48000) -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, 0, 0)


def opus_tags(comments: Mapping[str, str], vendor: str = "audio-spaces ingest") -> bytes:
    entries = [f"{k}={v}".encode() for k, v in comments.items()]
    out = [b"OpusTags", struct.pack("<I", len(vendor)), vendor.encode(), struct.pack("<I", len(entries))]
    for e in entries:
        out += [struct.pack("<I", len(e)), e]
    return b"".join(out)


class OggOpusWriter:
    """Appends Opus packets to an Ogg file, one ``os.write`` per page.

    ``page_packets`` bounds how much a crash can lose: packets wait in memory
    until that many are pending (20 ms each in WebRTC), then go out as a page.
    """

    def __init__(
        self,
        path: Path,
        *,
        serial: int,
        channels: int,
        comments: Mapping[str, str],
        page_packets: int = 10,
    ) -> None:
        self.path = path
        self.serial = serial & 0xFFFFFFFF
        self.page_packets = page_packets
        self.granule = 0
        self.packets = 0
        self._sequence = 0
        self._pending: list[bytes] = []
        self._pending_segments = 0
        # O_APPEND + whole-page writes: the file is always a prefix of pages.
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self._write_page([opus_head(channels=channels)], granule=0, flags=_FLAG_BOS)
        self._write_page([opus_tags(comments)], granule=0)
        # Headers on disk before any audio, so even a file killed at once is valid.
        os.fsync(self._fd)

    @property
    def duration_samples(self) -> int:
        return self.granule

    def write(self, packet: bytes, samples: int) -> None:
        segments = len(packet) // 255 + 1
        if self._pending_segments + segments > _MAX_SEGMENTS:
            self.flush()
        self._pending.append(packet)
        self._pending_segments += segments
        self.granule += samples
        self.packets += 1
        if len(self._pending) >= self.page_packets:
            self.flush()

    def flush(self) -> None:
        """Write pending packets as one page (no-op when none are pending)."""
        if self._pending:
            self._write_page(self._pending, granule=self.granule)
            self._pending = []
            self._pending_segments = 0

    def close(self, *, sync: bool = True) -> None:
        """Write what is pending as the last page (EOS), fsync and close."""
        if self._fd is None:
            return
        self._write_page(self._pending, granule=self.granule, flags=_FLAG_EOS)
        self._pending = []
        if sync:
            os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None

    def abandon(self) -> None:
        """Close the descriptor without writing (tests simulating a crash)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _write_page(self, packets: list[bytes], *, granule: int, flags: int = 0) -> None:
        assert self._fd is not None, "writer is closed"
        page = build_page(packets, serial=self.serial, sequence=self._sequence, granule=granule, flags=flags)
        self._sequence += 1
        os.write(self._fd, page)


# --- reading back -----------------------------------------------------------


@dataclass(frozen=True)
class Page:
    offset: int
    end: int
    flags: int
    granule: int
    serial: int
    sequence: int
    segments: bytes
    body: bytes


@dataclass(frozen=True)
class OggScan:
    """What a (possibly truncated) Ogg/Opus file holds."""

    valid_bytes: int
    """Length of the sound prefix: whole pages with good checksums."""
    total_bytes: int
    pages: int
    granule: int
    """Granule position of the last sound page (samples, pre-skip included)."""
    pre_skip: int
    channels: int
    comments: dict[str, str]
    audio_packets: int

    @property
    def truncated(self) -> bool:
        return self.valid_bytes < self.total_bytes

    @property
    def audio_samples(self) -> int:
        return max(self.granule - self.pre_skip, 0)


def iter_pages(data: bytes) -> Iterator[Page]:
    """Pages from the start of ``data`` up to the first damaged or missing one."""
    pos = 0
    while pos + _HEADER.size <= len(data):
        capture, version, flags, granule, serial, sequence, crc, count = _HEADER.unpack_from(data, pos)
        if capture != _CAPTURE or version != 0:
            return
        seg_start = pos + _HEADER.size
        if seg_start + count > len(data):
            return
        segments = data[seg_start : seg_start + count]
        body_len = sum(segments)
        end = seg_start + count + body_len
        if end > len(data):
            return
        page = bytearray(data[pos:end])
        struct.pack_into("<I", page, 22, 0)
        if ogg_crc(bytes(page)) != crc:
            return
        yield Page(pos, end, flags, granule, serial, sequence, segments, data[seg_start + count : end])
        pos = end


def iter_packets(pages: list[Page]) -> Iterator[bytes]:
    """Packets of a single logical stream, joined across page boundaries."""
    partial = b""
    for page in pages:
        pos = 0
        for lace in page.segments:
            partial += page.body[pos : pos + lace]
            pos += lace
            if lace < 255:
                yield partial
                partial = b""


def scan(data: bytes) -> OggScan:
    """Check an Ogg/Opus file, typically one a crash left on the spool."""
    pages = list(iter_pages(data))
    packets = list(iter_packets(pages))
    channels, pre_skip, comments = 0, 0, {}
    if packets and packets[0].startswith(b"OpusHead") and len(packets[0]) >= 19:
        channels = packets[0][9]
        pre_skip = struct.unpack_from("<H", packets[0], 10)[0]
    if len(packets) > 1 and packets[1].startswith(b"OpusTags"):
        comments = _parse_tags(packets[1])
    granule = 0
    for page in pages:
        if page.granule >= 0:
            granule = max(granule, page.granule)
    return OggScan(
        valid_bytes=pages[-1].end if pages else 0,
        total_bytes=len(data),
        pages=len(pages),
        granule=granule,
        pre_skip=pre_skip,
        channels=channels,
        comments=comments,
        audio_packets=max(len(packets) - 2, 0),
    )


def _parse_tags(packet: bytes) -> dict[str, str]:
    try:
        pos = 8
        (vendor_len,) = struct.unpack_from("<I", packet, pos)
        pos += 4 + vendor_len
        (count,) = struct.unpack_from("<I", packet, pos)
        pos += 4
        out: dict[str, str] = {}
        for _ in range(min(count, 64)):
            (n,) = struct.unpack_from("<I", packet, pos)
            pos += 4
            key, _, value = packet[pos : pos + n].decode("utf-8", "replace").partition("=")
            out[key] = value
            pos += n
        return out
    except struct.error:
        return {}


def repair(path: Path) -> OggScan:
    """Cut a spool file back to its sound prefix, so what is uploaded is valid."""
    data = path.read_bytes()
    result = scan(data)
    if result.truncated:
        with path.open("r+b") as f:
            f.truncate(result.valid_bytes)
            f.flush()
            os.fsync(f.fileno())
    return result
