"""Names in a space: what a valid one is, and what counts as the same name.

Names end up in transcripts, captions (a WebVTT ``<v Name>`` tag ends at a
line break), search rows and logs, one per line. So no control character
and no Unicode line break of any kind: besides CR and LF, VT, FF, NEL
(U+0085, a C1 control), LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR
(U+2029) all end a line for ``str.splitlines`` and for browsers; nor format
characters (bidi overrides make a name read as another). Titles follow the
same line rule.

Names are shown to everyone in the room, so two names that look alike
("Carol" and "carol", full-width letters) are one name: ``name_key`` is
what a space keeps unique. Names starting with ``SERVICE_PREFIX`` belong
to the room's own services (the room agent), never to a person.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

#: One character a name may hold: anything but C0/C1 controls, DEL and the
#: Unicode line and paragraph separators. Valid in Python and in pydantic's
#: (Rust) regular expressions alike; ``check_name`` is stricter still.
NAME_CHAR = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
MAX_NAME_CHARS = 64
MAX_TITLE_CHARS = 200
#: Names of the room's own services (the room agent) start with this; no person's may.
SERVICE_PREFIX = "@"

#: A participant's or speaker's name (for ``Field(pattern=...)``; not starting with the service prefix).
NAME_PATTERN = rf"^[^{SERVICE_PREFIX}{NAME_CHAR[2:-1]}]{NAME_CHAR}{{0,{MAX_NAME_CHARS - 1}}}$"
#: A space's title.
TITLE_PATTERN = rf"^{NAME_CHAR}{{1,{MAX_TITLE_CHARS}}}$"

#: Unicode categories a name may not contain: controls (incl. U+0085), line
#: and paragraph separators (U+2028, U+2029), format characters (bidi overrides).
_FORBIDDEN_CATEGORIES = {"Cc", "Zl", "Zp", "Cf"}
_TITLE = re.compile(TITLE_PATTERN)


def name_key(name: str) -> str:
    """The form two names are compared in: NFKC, case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def check_name(name: str) -> str:
    """The name, trimmed; raise ``ValueError`` saying what is wrong with it."""
    name = name.strip()
    if not name:
        raise ValueError("a name cannot be empty")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"a name is at most {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in name):
        raise ValueError("a name cannot contain control characters or line breaks")
    if name.startswith(SERVICE_PREFIX):
        raise ValueError(f"a name cannot start with {SERVICE_PREFIX!r} (kept for the room's own services)")
    return name


def is_valid_name(name: str) -> bool:
    """1 to 64 characters, none a control, format character or line break, not only spaces."""
    try:
        check_name(name)
    except ValueError:
        return False
    return True


def is_valid_title(title: str) -> bool:
    return bool(_TITLE.fullmatch(title)) and bool(title.strip())


def holder_address(host: str) -> str:
    """The address a client is known by (rate limits, removal): its IP, IPv6 by /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
