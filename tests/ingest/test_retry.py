"""The SFU's storage retry rides out an outage of any length: delays doubling to a cap, never giving up.

The live S3 outage test (``test_s3_outage_live.py``) cuts the store for a
quarter of a minute to stay in the suite's time budget. This checks, on a
virtual clock, the arithmetic behind issue 6's full minute: a segment whose
upload fails as the minute begins is tried again and again, each wait
doubling up to 30 s, and lands within one capped wait of the store's return.
"""

from __future__ import annotations

import asyncio

import pytest

from ingest import retry

#: What issue 6 asks a live space to survive.
OUTAGE_SECONDS = 60.0
#: ``retry_forever`` spreads each wait by up to 20 % either way.
JITTER = 0.2


def test_a_minute_of_outage_is_ridden_out_with_capped_doubling_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = 0.0
    waits: list[float] = []
    attempts: list[float] = []

    async def virtual_sleep(seconds: float) -> None:
        nonlocal clock
        waits.append(seconds)
        clock += seconds

    def upload() -> str:
        attempts.append(clock)
        if clock < OUTAGE_SECONDS:
            raise ConnectionError("S3 is away")
        return "stored"

    monkeypatch.setattr(retry.asyncio, "sleep", virtual_sleep)
    assert asyncio.run(retry.retry_forever(upload, what="upload")) == "stored"

    nominal = [min(retry.FIRST_DELAY * 2**i, retry.MAX_DELAY) for i in range(len(waits))]
    assert all((1 - JITTER) * n <= w <= (1 + JITTER) * n for w, n in zip(waits, nominal, strict=True)), waits
    assert nominal[-1] == retry.MAX_DELAY  # the cap was reached, and held
    assert len(attempts) >= 8  # never given up on: every attempt in the minute failed, the next one landed
    assert 0 <= attempts[-1] - OUTAGE_SECONDS <= (1 + JITTER) * retry.MAX_DELAY, attempts
