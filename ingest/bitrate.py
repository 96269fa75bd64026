"""The Opus bitrate the SFU asks speakers' browsers to send at.

The recording is the speaker's own Opus packets, kept as they arrive, so
their bitrate is what Whisper later hears. Browsers send speech at 32 kb/s
unless the receiver asks for more: a receiver's ``maxaveragebitrate``
(RFC 7587, section 6.1) is the sender's target. The SFU makes every offer,
so it asks there. aiortc takes the codec parameters of its offers from its
own codec table, which the SFU does not change for every connection in the
process, so the parameter is added to the offer's text before it is sent;
aiortc's own description stays as it made it (a receiver's parameter
changes nothing on its side).
"""

from __future__ import annotations

from aiortc import sdp

#: The SDP parameter a receiver names its preferred average bitrate with (RFC 7587).
MAX_AVERAGE_BITRATE = "maxaveragebitrate"


def ask_bitrate(offer_sdp: str, bitrate: int) -> str:
    """``offer_sdp`` asking for ``bitrate`` bit/s of Opus on every m-line (0: the offer unchanged)."""
    if not bitrate:
        return offer_sdp
    offer = sdp.SessionDescription.parse(offer_sdp)
    for media in offer.media:
        for codec in media.rtp.codecs:
            if codec.mimeType.lower() == "audio/opus":
                codec.parameters[MAX_AVERAGE_BITRATE] = bitrate
    return str(offer)
