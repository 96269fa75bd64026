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

#: Opus bit/s a browser sends speech at unless asked for more (libwebrtc's default for mono).
BROWSER_BITRATE = 32000


def ask_bitrate(offer_sdp: str, bitrate: int, mid: str | None) -> str:
    """``offer_sdp`` asking for ``bitrate`` bit/s of Opus on the m-line ``mid`` (a speaker's publish m-line).

    The offer is unchanged where there is nothing to ask (no bitrate, no
    m-line the participant sends on): a listener's offers stay as aiortc made them.
    """
    if not bitrate or mid is None:
        return offer_sdp
    offer = sdp.SessionDescription.parse(offer_sdp)
    for media in offer.media:
        if media.rtp.muxId != mid:
            continue
        for codec in media.rtp.codecs:
            if codec.mimeType.lower() == "audio/opus":
                codec.parameters[MAX_AVERAGE_BITRATE] = bitrate
    return str(offer)
