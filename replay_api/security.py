"""The one security-header policy of our web pages.

Every page gets the same Content-Security-Policy base (scripts, styles and
everything else from this server only, no plugins, no framing, forms back
to us), no ``Referer`` (tokens may be in page URLs) and no MIME sniffing.
A page widens it only where it must: where its audio may come from
(``media``: the S3 store the audio route redirects to; the live page's
WebRTC streams) and whom its scripts may talk to (``connect``: SFU nodes).
The API docs page, whose Swagger UI needs inline styles, has its own
policy here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from spaces.nodes import Node
from spaces.settings import Settings

_BASE = "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

#: The docs page (``routes/docs.py``): Swagger UI's scripts from this server,
#: and the style attributes they set.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)


def page_headers(*, media: Iterable[str] = (), connect: Iterable[str] = ()) -> dict[str, str]:
    """Headers of a page whose audio may also come from ``media`` and whose scripts may reach ``connect``."""
    connect_src = " ".join(["'self'", *dict.fromkeys(connect)])
    media_src = " ".join(["'self'", *dict.fromkeys(media)])
    return with_policy(f"default-src 'self'; connect-src {connect_src}; media-src {media_src}; {_BASE}")


def with_policy(csp: str) -> dict[str, str]:
    return {"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def store_media(settings: Settings) -> list[str]:
    """Where replay audio comes from besides us: the S3 endpoint presigned URLs point at."""
    if not settings.s3_bucket:
        return []
    endpoint = urlsplit(settings.s3_endpoint_url)
    return [f"{endpoint.scheme}://{endpoint.netloc}" if endpoint.netloc else "https://*.amazonaws.com"]


#: The live page's own media: the WebRTC streams it plays.
LIVE_MEDIA = ("blob:", "mediastream:")


def node_origins(nodes: Iterable[Node]) -> list[str]:
    """The origins a live page talks to: each node's WebSocket and HTTP origin."""
    origins: list[str] = []
    for node in nodes:
        base = urlsplit(node.url)
        ws = "wss" if base.scheme == "https" else "ws"
        origins += [f"{ws}://{base.netloc}", f"{base.scheme}://{base.netloc}"]
    return origins
