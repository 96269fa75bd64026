"""Errors of the SFU, as the client sees them on the signaling socket.

IngestError                      {"type": "error", "code": ..., "message": ...}
 ├── BadMessage      bad_message     not JSON, unknown type, wrong fields (closed 4400 if repeated)
 ├── OutOfOrder      out_of_order    e.g. an answer before any offer, a stale answer, a second join
 ├── BadSdp          bad_sdp         malformed SDP, no Opus, missing ICE/DTLS data, forbidden direction
 ├── Forbidden       forbidden       the role does not allow it (listener publishing, non-host control)
 │    └── NotAgent   forbidden       captions from anyone but the room agent (closed 4403)
 ├── Unauthorized    unauthorized    bad, expired or other-space token (closed 4401)
 ├── UnknownSpace    unknown_space   no such space (closed 4404)
 ├── SpaceEnded      ended           the space is over or the participant was removed (closed 4409)
 ├── IdentityTaken   identity_taken  the name belongs to another token in this space (closed 4409 on join)
 ├── NameTaken       identity_taken  a name asked for in the room (hand, name) is another's (not closed)
 ├── SetupTimeout    setup_timeout   joined but media not connected in time (closed 4408)
 ├── TooMany         too_many        room full or join rate exceeded (closed 4429)
 ├── ListenOnHls     (none)          a listener past the WebRTC cap: sent as {"type": "hls", ...} (closed 4303)
 ├── Unavailable     unavailable     the space's node is down, or the node registry unreachable (closed 1013)
 └── Moved           (none)          another node holds the space: sent as {"type": "moved", ...} (closed 4307)

Errors with a ``close_code`` end the connection; the others are reported
and the participant carries on.
"""

from __future__ import annotations


class IngestError(Exception):
    code = "error"
    close_code: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadMessage(IngestError):
    code = "bad_message"


class OutOfOrder(IngestError):
    code = "out_of_order"


class BadSdp(IngestError):
    code = "bad_sdp"


class Forbidden(IngestError):
    code = "forbidden"


class NotAgent(Forbidden):
    """Only the room agent speaks for the room: anyone else sending captions is forging them."""

    close_code = 4403


class Unauthorized(IngestError):
    code = "unauthorized"
    close_code = 4401


class UnknownSpace(IngestError):
    code = "unknown_space"
    close_code = 4404


class SpaceEnded(IngestError):
    code = "ended"
    close_code = 4409


class IdentityTaken(IngestError):
    code = "identity_taken"
    close_code = 4409


class NameTaken(IngestError):
    code = "identity_taken"


class SetupTimeout(IngestError):
    code = "setup_timeout"
    close_code = 4408


class TooMany(IngestError):
    code = "too_many"
    close_code = 4429


class Unavailable(IngestError):
    code = "unavailable"
    close_code = 1013


class Redirect(IngestError):
    """Not an error to the client: a message saying where to go instead, then the socket closes."""

    close_code = 4300

    def message_dict(self) -> dict[str, str]:
        raise NotImplementedError


class ListenOnHls(Redirect):
    """The room's WebRTC listener seats are taken: listen to its HLS instead.

    The SFU knows no URLs but its own: the page (or any client) takes the
    space's ``hls_url`` from the API, where the HLS is served.
    """

    code = "hls"
    close_code = 4303

    def message_dict(self) -> dict[str, str]:
        return {"type": "hls", "reason": "full", "message": self.message}


class Moved(Redirect):
    """A ``moved`` message naming the node that holds the space."""

    code = "moved"
    close_code = 4307

    def __init__(self, rtc_url: str, node_id: str) -> None:
        super().__init__(f"this space is on SFU node {node_id!r}: {rtc_url}")
        self.rtc_url = rtc_url
        self.node_id = node_id

    def message_dict(self) -> dict[str, str]:
        return {"type": "moved", "rtc_url": self.rtc_url, "node": self.node_id}
