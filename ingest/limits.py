"""Admission limits: how fast one address may try to join."""

from __future__ import annotations

import time


class RateLimiter:
    """A token bucket per key (client address): ``burst`` at once, ``rate`` per second after."""

    def __init__(self, *, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, *, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            # Forget the fullest buckets first: they are the idle ones.
            for k, _ in sorted(self._buckets.items(), key=lambda kv: -kv[1][0])[: self.max_keys // 10]:
                del self._buckets[k]
        return allowed
