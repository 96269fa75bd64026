"""Keeping tokens out of the access log.

Live-page and replay URLs may carry a join or access token in the query
(``?token=...``): links must work when pasted, and an ``<audio src>`` cannot
send a header. Whoever reads the server's access log must not be able to
join or read a private space with what they find there, so the ``token``
parameter's value is replaced before uvicorn's access logger writes a line.
"""

from __future__ import annotations

import logging
import re

#: uvicorn's access logger; its records' args are
#: ``(client, method, path_with_query, http_version, status)``.
ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"

#: ``token=...`` as a query parameter (any case, also ``access_token``),
#: up to the next ``&``, ``#`` or whitespace.
_TOKEN_PARAM = re.compile(r"(?i)(?<=[?&;])((?:[a-z_]*_)?token=)[^&#\s]*")


def redact(text: str) -> str:
    """``text`` with every token parameter's value replaced."""
    return _TOKEN_PARAM.sub(lambda m: m.group(1) + REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message arguments (and message) without tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Add the filter to uvicorn's access logger, once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
