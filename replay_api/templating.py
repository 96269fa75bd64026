"""The Jinja2 environment of the web pages, shared by every page router."""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup
from starlette.requests import Request

from replay_api.i18n import DEFAULT, Locale, locales, negotiate
from spaces.languages import NAMES, language_name

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATE_DIR = PACKAGE_DIR / "templates"


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``, as players show time."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


#: What each pipeline stage does, in words a listener knows ("transcribe:alice").
_STAGES = {
    "transcribe": "Transcribing {name}",
    "levels": "Measuring {name}'s levels",
    "mix": "Mixing the replay",
    "assemble": "Putting the transcript together",
    "captions": "Writing captions",
    "index": "Indexing for search",
}

#: The order stages are shown in: per-speaker work first, as the pipeline runs it.
_STAGE_ORDER = ("levels", "transcribe", "mix", "assemble", "captions", "index")

#: How a space's state reads on a chip.
_STATES = {
    "created": "Not started",
    "live": "Live",
    "recorded": "Ended",
    "processing": "Processing",
    "ready": "Ready",
    "failed": "Failed",
}


def stage(name: str, locale: Locale | None = None) -> str:
    """A pipeline stage in plain words: ``transcribe:alice`` is ``Transcribing alice``."""
    tr = (locale or locales()[DEFAULT]).gettext
    kind, _, who = name.partition(":")
    template = _STAGES.get(kind)
    if template is None:
        return name.replace("_", " ").capitalize()
    return tr(template, name=who or tr("a speaker"))


def stages(progress: dict[str, float]) -> list[tuple[str, float]]:
    """``progress`` in pipeline order."""

    def rank(name: str) -> tuple[int, str]:
        kind = name.partition(":")[0]
        return (_STAGE_ORDER.index(kind) if kind in _STAGE_ORDER else len(_STAGE_ORDER), name)

    return [(name, progress[name]) for name in sorted(progress, key=rank)]


def state(value: str, locale: Locale | None = None) -> str:
    tr = (locale or locales()[DEFAULT]).gettext
    return tr(_STATES.get(str(value), str(value).capitalize()))


def date(timestamp: float, locale: Locale | None = None) -> str:
    return (locale or locales()[DEFAULT]).date(timestamp)


def _locale_of(ctx: Any) -> Locale:
    locale = ctx.get("locale")
    return locale if isinstance(locale, Locale) else locales()[DEFAULT]


@pass_context
def _date(ctx: Any, timestamp: float) -> str:
    return date(timestamp, _locale_of(ctx))


@pass_context
def _length(ctx: Any, seconds: float) -> str:
    return _locale_of(ctx).length(seconds)


@pass_context
def _stage(ctx: Any, name: str) -> str:
    return stage(name, _locale_of(ctx))


@pass_context
def _state(ctx: Any, value: str) -> str:
    return state(value, _locale_of(ctx))


def page_language(request: Request) -> dict[str, Any]:
    """What every page needs to speak the reader's language: ``locale``, ``_`` and the switch."""
    locale = negotiate(request)
    switch = [
        {
            "code": code,
            "name": other.name,
            "url": str(request.url.include_query_params(lang=code)),
            "current": code == locale.code,
        }
        for code, other in locales().items()
    ]
    # The languages a host may hold a space in, named in the reader's language.
    held = sorted(((code, locale.gettext(name)) for code, name in NAMES.items()), key=lambda c: c[1])
    return {
        "locale": locale,
        "_": locale.gettext,
        "languages": switch,
        "language_name": language_name,
        "space_languages": held,
    }


@cache
def static_version(name: str) -> str:
    """A content hash for cache-busting ``/static`` URLs (files change only on deploy)."""
    try:
        return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def static_url(name: str) -> str:
    return f"/static/{name}?v={static_version(name)}"


#: A script's strings: the literal argument of each ``tr("...")`` call.
_SCRIPT_STRING = re.compile(r'\btr\(\s*"((?:[^"\\]|\\.)*)"')


@cache
def script_keys(name: str) -> tuple[str, ...]:
    """The catalogue keys a static script looks up (read once: files change only on deploy)."""
    source = (STATIC_DIR / name).read_text(encoding="utf-8")
    return tuple(dict.fromkeys(json.loads(f'"{raw}"') for raw in _SCRIPT_STRING.findall(source)))


@pass_context
def script_strings(ctx: Any, *names: str) -> Markup:
    """The strings ``names`` use, in the page's language, and ``i18n.js`` that serves them as ``tr``."""
    locale = _locale_of(ctx)
    strings = {key: locale.gettext(key) for name in names for key in script_keys(name)}
    # ``ensure_ascii`` and escaping ``<``, ``>`` and ``&`` keep the block from closing its script tag.
    payload = (
        json.dumps(strings, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )
    return Markup(
        f'<script type="application/json" id="strings">{payload}</script>\n'
        f'<script src="{static_url("i18n.js")}" defer></script>'
    )


templates = Jinja2Templates(directory=TEMPLATE_DIR, context_processors=[page_language])
templates.env.filters["clock"] = clock
templates.env.filters["length"] = _length
templates.env.filters["date"] = _date
templates.env.filters["stage"] = _stage
templates.env.filters["stages"] = stages
templates.env.filters["state"] = _state
templates.env.globals["static_url"] = static_url
templates.env.globals["script_strings"] = script_strings
