"""Participant names in a space: what counts as the same name, and what is a valid one.

Names become speaker names in transcripts and are shown to everyone in the
room, so two names that look alike ("Carol" and "carol", full-width letters)
are one name: ``name_key`` is what a space keeps unique.
"""

from __future__ import annotations

import ipaddress
import unicodedata

MAX_NAME_CHARS = 64
#: Names of the room's own services (the room agent) start with this; no person's may.
SERVICE_PREFIX = "@"

#: Unicode categories a name may not contain: controls (incl. U+0085), line
#: and paragraph separators (U+2028, U+2029), format characters (bidi overrides).
_FORBIDDEN_CATEGORIES = {"Cc", "Zl", "Zp", "Cf"}


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
