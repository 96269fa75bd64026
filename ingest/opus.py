"""What the SFU needs to know about Opus packets without decoding them.

The recorder writes packets as received, so it must know how many samples
each one covers (for Ogg granule positions and the room clock) and must be
able to fill short gaps with packets that decode to silence. Both come from
the TOC byte (RFC 6716, section 3.1).
"""

from __future__ import annotations

#: Opus in WebRTC always runs its RTP clock at 48 kHz, whatever the audio bandwidth.
CLOCK_RATE = 48000

#: Samples per frame for each TOC configuration number (RFC 6716, table 2).
_FRAME_SAMPLES = (
    # SILK-only NB/MB/WB: 10, 20, 40, 60 ms
    *(480, 960, 1920, 2880) * 3,
    # Hybrid SWB/FB: 10, 20 ms
    *(480, 960) * 2,
    # CELT-only NB/WB/SWB/FB: 2.5, 5, 10, 20 ms
    *(120, 240, 480, 960) * 4,
)

#: An Opus packet never covers more than 120 ms.
MAX_PACKET_SAMPLES = 5760

#: TOC-only packets (one frame of zero bytes, code 0) of the CELT fullband
#: configurations: a decoder treats them as a lost frame and conceals, which
#: fades to silence. Used to keep a recording's timeline through short gaps.
_SILENCE_BY_SAMPLES = (
    (960, bytes([31 << 3])),
    (480, bytes([30 << 3])),
    (240, bytes([29 << 3])),
    (120, bytes([28 << 3])),
)


def packet_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) the packet decodes to; 0 if it is not valid Opus.

    Only the framing is checked (TOC byte and, for code 3, the frame count),
    which is all the recorder relies on.
    """
    if not packet:
        return 0
    toc = packet[0]
    per_frame = _FRAME_SAMPLES[toc >> 3]
    code = toc & 0x3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            return 0
        frames = packet[1] & 0x3F
        if frames == 0:
            return 0
    total = per_frame * frames
    return total if total <= MAX_PACKET_SAMPLES else 0


def is_stereo(packet: bytes) -> bool:
    return bool(packet) and bool(packet[0] & 0x4)


def silence(samples: int) -> list[bytes]:
    """Packets that together cover ``samples`` (rounded down to 2.5 ms)."""
    out: list[bytes] = []
    remaining = samples
    for size, packet in _SILENCE_BY_SAMPLES:
        count, remaining = divmod(remaining, size)
        out.extend([packet] * count)
    return out
