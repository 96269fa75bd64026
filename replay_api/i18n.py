"""The language of the pages: chosen per request, strings from one catalogue per language.

A catalogue is ``locales/<code>.json``: the English text (the key, as
gettext's msgid) to the text in that language, plus ``_meta`` (the
language's own name, date and duration formats). English needs no entry:
a key is its own English text. A third language is one more file.

The language is, in order: ``?lang=`` (the switch on every page, which also
sets a cookie), the ``lang`` cookie, the best ``Accept-Language`` match,
English.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from starlette.requests import Request

LOCALE_DIR = Path(__file__).parent / "locales"
DEFAULT = "en"
COOKIE = "lang"

_ENGLISH_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Locale:
    code: str
    name: str
    """The language's name in itself (shown on the switch)."""
    strings: dict[str, str] = field(default_factory=dict)
    months: tuple[str, ...] = _ENGLISH_MONTHS
    date_format: str = "{day:02d} {month} {year}, {hour:02d}:{minute:02d} UTC"
    units: dict[str, str] = field(default_factory=lambda: {"s": "s", "min": "min", "h": "h"})

    def gettext(self, text: str, **values: Any) -> str:
        """``text`` in this language (English if the catalogue lacks it), ``{name}`` filled in."""
        out = self.strings.get(text, text)
        return out.format(**values) if values else out

    def date(self, timestamp: float) -> str:
        when = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
        return self.date_format.format(
            day=when.day, month=self.months[when.month - 1], year=when.year, hour=when.hour, minute=when.minute
        )

    def length(self, seconds: float) -> str:
        """A human duration in this language's units: ``42 s``, ``12 min``, ``1 h 05 min``.

        Whole seconds are cut like :func:`replay_api.templating.clock` cuts
        them (as players do), so a space's length and its player's total
        never disagree by a second.
        """
        total = max(0, int(seconds))
        u = self.units
        if total < 60:
            return f"{total} {u['s']}"
        minutes = total // 60
        if minutes < 60:
            return f"{minutes} {u['min']}"
        return f"{minutes // 60} {u['h']} {minutes % 60:02d} {u['min']}"


@cache
def locales() -> dict[str, Locale]:
    """Every language with a catalogue, English first."""
    found = {DEFAULT: Locale(DEFAULT, "English")}
    for path in sorted(LOCALE_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        meta = data.pop("_meta", {})
        base = found.get(path.stem, Locale(path.stem, path.stem))
        found[path.stem] = Locale(
            code=path.stem,
            name=meta.get("name", base.name),
            strings={**base.strings, **data},
            months=tuple(meta.get("months", base.months)),
            date_format=meta.get("date_format", base.date_format),
            units={**base.units, **meta.get("units", {})},
        )
    return found


def negotiate(request: Request) -> Locale:
    """The page language for this request (see the module docstring)."""
    available = locales()
    for wanted in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if wanted and wanted.lower() in available:
            return available[wanted.lower()]
    return available[best_match(request.headers.get("accept-language", ""), list(available))]


def best_match(header: str, available: list[str]) -> str:
    """The available language ``Accept-Language`` prefers (``fr-CA`` matches ``fr``), else English."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in available and quality > 0:
            ranked.append((-quality, i, primary))
    return min(ranked)[2] if ranked else DEFAULT
