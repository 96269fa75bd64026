"""How strong a signing secret is, and where the public development one may be used.

``Settings.validate`` refuses a production secret under 32 random bytes'
worth, and the development secret anywhere but loopback.
"""

from __future__ import annotations

import ipaddress
import math
import string

#: The development signing secret: public, so refused in production and
#: wherever the API or the SFU listens on more than loopback.
DEV_SECRET = "development-secret-change-me-in-production"
#: The strength a production secret must show: 32 random bytes.
MIN_SECRET_BITS = 256
#: How to make one, for the error messages.
MAKE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def secret_weakness(secret: str) -> str:
    """Why ``secret`` is too weak to sign tokens in production; empty if it is not.

    Strength is estimated from the characters it is made of: length times
    the bits of the smallest alphabet that spells it (hex 4 bits a
    character, base64 6). A floor, not a proof of randomness: it refuses
    the short, the repetitive and the public, and passes what
    ``secrets.token_urlsafe(32)``, ``secrets.token_hex(32)`` or
    ``openssl rand -base64 32`` make.
    """
    if not secret:
        return "is empty"
    if secret != secret.strip():
        return "starts or ends with whitespace (a copy-paste slip?)"
    if DEV_SECRET in secret.lower():
        return "contains the public development secret"
    if _repeats(secret, 8):
        return "repeats itself"
    bits = len(secret) * math.log2(_alphabet_size(secret))
    if bits < MIN_SECRET_BITS or len(set(secret)) < 10:
        return f"is too weak (about {bits:.0f} bits from {len(set(secret))} distinct characters)"
    return ""


def _alphabet_size(secret: str) -> int:
    """Characters of the smallest usual encoding that spells ``secret``."""
    chars = set(secret)
    if chars <= set(string.digits + "abcdef") or chars <= set(string.digits + "ABCDEF"):
        return 16  # hex
    if chars <= set(string.digits + string.ascii_lowercase) or chars <= set(string.digits + string.ascii_uppercase):
        return 36  # one case of letters, digits
    if chars <= set(string.ascii_letters + string.digits + "-_+/="):
        return 64  # base64, plain or URL-safe
    return 95  # printable ASCII (and beyond, counted as no more)


def _repeats(text: str, n: int) -> bool:
    """Whether some ``n`` characters occur twice (in random text they all but never do)."""
    seen: set[str] = set()
    for i in range(len(text) - n + 1):
        if text[i : i + n] in seen:
            return True
        seen.add(text[i : i + n])
    return False


def is_dev_secret(secret: str) -> bool:
    return secret.strip() == DEV_SECRET


def is_loopback(host: str) -> bool:
    """Whether a listen address reaches this machine only ("0.0.0.0" and "" reach everyone)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything
