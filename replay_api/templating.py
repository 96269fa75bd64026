"""The Jinja2 environment of the web pages, shared by every page router."""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import cache
from pathlib import Path

from fastapi.templating import Jinja2Templates

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATE_DIR = PACKAGE_DIR / "templates"


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``, as players show time."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def length(seconds: float) -> str:
    """A human duration: ``42 s``, ``12 min``, ``1 h 05 min``."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def date(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%d %b %Y, %H:%M UTC")


@cache
def static_version(name: str) -> str:
    """A content hash for cache-busting ``/static`` URLs (files change only on deploy)."""
    try:
        return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def static_url(name: str) -> str:
    return f"/static/{name}?v={static_version(name)}"


templates = Jinja2Templates(directory=TEMPLATE_DIR)
templates.env.filters["clock"] = clock
templates.env.filters["length"] = length
templates.env.filters["date"] = date
templates.env.globals["static_url"] = static_url
