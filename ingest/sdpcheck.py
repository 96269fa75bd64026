"""Checking a client's SDP answer before aiortc sees it.

aiortc validates some things and trips over others (a missing fingerprint
is an ``assert`` inside a background task). We check what we rely on and
say what is wrong: parseable, one answer m-line per offered m-line, Opus
accepted, ICE credentials and a DTLS fingerprint present, a bounded number
of ICE candidates, and a direction
the participant's role allows (only the offered publish m-line may send).
"""

from __future__ import annotations

from aiortc import sdp

from ingest.exceptions import BadSdp, Forbidden

_SEND = {"sendonly", "sendrecv"}


def check_answer(
    answer_sdp: str, *, offered_mids: list[str], publish_mid: str | None, max_candidates: int = 20
) -> sdp.SessionDescription:
    """Parse and check an answer to our offer (``offered_mids`` in m-line order)."""
    if "\x00" in answer_sdp or not answer_sdp.lstrip().startswith("v=0"):
        raise BadSdp("malformed SDP: an SDP answer starts with 'v=0'")
    try:
        desc = sdp.SessionDescription.parse(answer_sdp)
    except Exception as e:  # noqa: BLE001 - aiortc's parser raises anything on garbage
        raise BadSdp(f"malformed SDP: {type(e).__name__}") from e
    mids = [m.rtp.muxId for m in desc.media]
    if mids != offered_mids:
        raise BadSdp(f"the answer's m-lines {mids} do not match the offer's {offered_mids}")
    for media in desc.media:
        mid = media.rtp.muxId
        if media.kind != "audio":
            raise BadSdp(f"m-line {mid}: only audio is offered")
        if not any(c.mimeType.lower() == "audio/opus" for c in media.rtp.codecs):
            raise BadSdp(f"m-line {mid}: the answer must accept Opus")
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise BadSdp(f"m-line {mid}: ICE username fragment or password missing")
        if media.dtls is None or not media.dtls.fingerprints:
            raise BadSdp(f"m-line {mid}: DTLS fingerprint missing")
        if media.dtls.role not in ("client", "server"):
            raise BadSdp(f"m-line {mid}: a=setup must be active or passive in an answer")
        if len(media.ice_candidates) > max_candidates:
            # Each candidate is an address the SFU would send checks to.
            raise BadSdp(
                f"m-line {mid}: {len(media.ice_candidates)} ICE candidates; at most {max_candidates} are accepted"
            )
        if not media.rtcp_mux:
            raise BadSdp(f"m-line {mid}: rtcp-mux is required")
        if media.direction in _SEND and mid != publish_mid:
            raise Forbidden(f"m-line {mid} may only receive: this participant may not publish there")
        if mid == publish_mid and media.direction not in ("sendonly", "inactive"):
            raise BadSdp(f"m-line {mid}: the publish m-line must be sendonly or inactive")
    return desc
