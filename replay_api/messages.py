"""What people read on the error pages: plain words, kept in one place.

The JSON API keeps its precise, developer-facing messages (``query.t: Input
should be a valid number``); a person who opened a link in a browser gets
these instead, with the precise one folded away under "Details".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: A catalogue lookup: ``Locale.gettext``'s shape.
Gettext = Callable[..., str]

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Not ready yet",
    413: "Too large",
    416: "Range not satisfiable",
    422: "Bad request",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
}

UNKNOWN_PAGE_TITLE = "Page not found"
UNKNOWN_PAGE = "There is nothing at this address. Check the link, or find the space from the home page."

PLAIN = {
    400: "This link or form has something we cannot use.",
    401: "The access link you used is not valid any more (it may have expired). Ask for a new one.",
    403: "Your access link is for another space.",
    404: (
        "There is no such space here. It may have been deleted, or it is private: open it with the link you were given."
    ),
    405: "This address cannot be used that way.",
    409: "This space is not ready yet. Its replay appears once it has ended and been processed.",
    413: "What was sent is too large.",
    416: "That part of the audio does not exist.",
    429: "Too many requests from your address. Wait a moment, then try again.",
    500: "Something went wrong on our side. Try again in a moment.",
    503: "This is unavailable right now. Try again in a moment.",
}

_WHERE = {"query": "This link", "path": "This address", "body": "The form", "header": "The request"}


def english(text: str, **values: Any) -> str:
    """The catalogue lookup for English: a key is its own English text."""
    return text.format(**values) if values else text


def title(status: int) -> str:
    return TITLES.get(status, "Error")


def plain(status: int) -> str:
    return PLAIN.get(status, PLAIN[500] if status >= 500 else PLAIN[400])


def invalid(errors: Sequence[Mapping[str, Any]], tr: Gettext = english) -> str:
    """One plain sentence per problem of a request pydantic refused, in ``tr``'s language."""
    sentences = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = tr(_WHERE.get(loc[0], "The request") if loc else "The request")
        name = loc[-1] if len(loc) > 1 else ""
        reason = _reason(error, tr)
        if name:
            sentences.append(
                tr("{where} has a bad value for “{name}”: {reason}.", where=where, name=name, reason=reason)
            )
        else:
            sentences.append(tr("{where} has a bad value: {reason}.", where=where, reason=reason))
    return " ".join(dict.fromkeys(sentences)) or tr(PLAIN[400])


def _reason(error: Mapping[str, Any], tr: Gettext) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind in ("float_parsing", "float_type", "finite_number"):
        return tr("it should be a number")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return tr("it should be a whole number")
    if kind in ("greater_than_equal", "greater_than"):
        bound = _number(ctx.get("ge", ctx.get("gt")))
        if kind == "greater_than_equal":
            return tr("it should be {bound} or more", bound=bound)
        return tr("it should be more than {bound}", bound=bound)
    if kind in ("less_than_equal", "less_than"):
        bound = _number(ctx.get("le", ctx.get("lt")))
        if kind == "less_than_equal":
            return tr("it should be at most {bound}", bound=bound)
        return tr("it should be less than {bound}", bound=bound)
    if kind == "missing":
        return tr("it is missing")
    if kind == "string_too_long":
        return tr("it is too long (at most {count} characters)", count=ctx.get("max_length"))
    if kind == "string_too_short":
        return tr("it is empty")
    if kind in ("enum", "literal_error"):
        if "expected" in ctx:
            return tr("it should be {expected}", expected=ctx["expected"])
        return tr("it should be one of the allowed values")
    if kind == "json_invalid":
        return tr("it is not valid JSON")
    return tr("it is not in a form we can use")


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
