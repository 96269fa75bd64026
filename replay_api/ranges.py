"""HTTP Range requests (RFC 9110, section 14), parsed without trusting the client.

Our rules for ``serving.BlobFileResponse``, which leaves the sending of the
ranges to Starlette's ``FileResponse``.

Browsers seek in audio with single ``bytes=N-`` ranges; download managers and
some players send several. We honour up to ``MAX_RANGES`` (coalesced), and
refuse more, since many small ranges are how a client makes one request cost
a server a thousand reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: More ranges than this in one request is refused with 416.
MAX_RANGES = 8

#: Numbers longer than this are clamped instead of parsed: Python refuses to
#: parse very long integers, and no blob is an exabyte.
_MAX_DIGITS = 18
_HUGE = 10**_MAX_DIGITS

_SPEC = re.compile(r"(\d*)-(\d*)")


class RangeNotSatisfiable(Exception):
    """The Range header is malformed, asks for too much, or lies past the end."""


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end``, both inclusive, as in ``Content-Range``."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str, size: int) -> list[ByteRange] | None:
    """The ranges to send, sorted and coalesced; ``None`` to send the whole blob.

    A unit other than ``bytes`` is ignored (RFC 9110 asks servers to ignore
    units they do not know). Raises ``RangeNotSatisfiable`` for a malformed
    byte range set, more than ``MAX_RANGES`` ranges, or when no range
    overlaps the blob.
    """
    unit, sep, spec = header.partition("=")
    if not sep:
        raise RangeNotSatisfiable("malformed Range header: expected bytes=first-last")
    if unit.strip().lower() != "bytes":
        return None
    parts = [p.strip() for p in spec.split(",")]
    parts = [p for p in parts if p]
    if not parts:
        raise RangeNotSatisfiable("malformed Range header: no range given")
    if len(parts) > MAX_RANGES:
        raise RangeNotSatisfiable(f"too many ranges: at most {MAX_RANGES} per request")
    ranges = [r for r in (_one(p, size) for p in parts) if r is not None]
    if not ranges:
        raise RangeNotSatisfiable(f"range not satisfiable: the blob has {size} bytes")
    return _coalesce(ranges)


def _one(spec: str, size: int) -> ByteRange | None:
    """One ``first-last``, ``first-`` or ``-suffix``; None if past the end."""
    match = _SPEC.fullmatch(spec)
    if match is None or not (match[1] or match[2]):
        raise RangeNotSatisfiable(f"malformed range {spec[:40]!r}")
    first, last = match[1], match[2]
    if not first:
        suffix = _number(last)
        return ByteRange(max(0, size - suffix), size - 1) if suffix > 0 and size > 0 else None
    start = _number(first)
    end = _number(last) if last else size - 1
    if end < start:
        raise RangeNotSatisfiable(f"malformed range {spec[:40]!r}: last byte before first")
    if start >= size:
        return None
    return ByteRange(start, min(end, size - 1))


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else _HUGE


def _coalesce(ranges: list[ByteRange]) -> list[ByteRange]:
    """Merge overlapping and adjacent ranges, so no byte is sent twice."""
    merged: list[ByteRange] = []
    for r in sorted(ranges, key=lambda r: r.start):
        if merged and r.start <= merged[-1].end + 1:
            last = merged[-1]
            merged[-1] = ByteRange(last.start, max(last.end, r.end))
        else:
            merged.append(r)
    return merged


def etag_matches(header: str | None, etag: str, *, weak: bool) -> bool:
    """Does an ``If-None-Match`` (weak) or ``If-Range`` (strong) header name ``etag``?"""
    if not header:
        return False
    if weak and header.strip() == "*":
        return True
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            if not weak:
                continue
            tag = tag[2:]
        if tag == etag:
            return True
    return False
