"""Range header parsing (RFC 9110, section 14) without a server."""

from __future__ import annotations

import pytest

from replay_api.ranges import MAX_RANGES, ByteRange, RangeNotSatisfiable, etag_matches, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", [(0, 99)]),
        ("bytes=100-", [(100, 999)]),
        ("bytes=-100", [(900, 999)]),
        ("bytes=-5000", [(0, 999)]),
        ("bytes=990-5000", [(990, 999)]),
        ("bytes=0-99999999999999999999999999", [(0, 999)]),
        ("BYTES = 0-0", [(0, 0)]),
        ("bytes=0-9, 20-29", [(0, 9), (20, 29)]),
        ("bytes=20-29,0-9", [(0, 9), (20, 29)]),
        ("bytes=0-9,5-19,20-29", [(0, 29)]),
        ("bytes=0-9,,20-29,", [(0, 9), (20, 29)]),
        ("bytes=0-9,5000-6000", [(0, 9)]),
    ],
)
def test_satisfiable(header: str, expected: list[tuple[int, int]]) -> None:
    assert parse_range(header, 1000) == [ByteRange(a, b) for a, b in expected]


@pytest.mark.parametrize("header", ["items=0-5", "seconds=1-2"])
def test_other_units_are_ignored(header: str) -> None:
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize(
    "header",
    [
        "bytes=1000-",
        "bytes=5000-6000",
        "bytes=-0",
        "bytes=abc",
        "bytes=5-2",
        "bytes=",
        "bytes=-",
        "bytes=1-2-3",
        "bytes 0-5",
        "bytes=0x10-20",
        "bytes=-1-",
        "bytes=" + "9" * 5000 + "-",
        "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES + 1)),
    ],
)
def test_unsatisfiable_or_malformed(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_empty_blob_has_no_satisfiable_range() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-10", 0)


def test_etag_matching() -> None:
    assert etag_matches('"a", W/"b"', '"b"', weak=True)
    assert not etag_matches('W/"b"', '"b"', weak=False)
    assert etag_matches("*", '"x"', weak=True)
    assert etag_matches('"x"', '"x"', weak=False)
    assert not etag_matches(None, '"x"', weak=True)
