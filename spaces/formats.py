"""The replay's audio formats: Opus in Ogg for the browsers that play it, AAC in MP4 for Safari.

One enum names them everywhere: the blob keys (``replay.ogg``), the API's
``format`` parameter, the mix that encodes the replay and the clips cut from it.
"""

from __future__ import annotations

import enum


class AudioFormat(enum.StrEnum):
    OGG = "ogg"
    M4A = "m4a"

    @property
    def media_type(self) -> str:
        return "audio/ogg" if self is AudioFormat.OGG else "audio/mp4"

    @property
    def codec(self) -> str:
        """The FFmpeg encoder."""
        return "libopus" if self is AudioFormat.OGG else "aac"

    @property
    def bit_rate(self) -> int:
        """Bits per second: speech at 48 kb/s in Opus sounds as AAC does at 64."""
        return 48_000 if self is AudioFormat.OGG else 64_000

    @property
    def codec_options(self) -> dict[str, str]:
        """Encoder options: FFmpeg's AAC encoder searches its quantizers with its ``fast`` coder, not
        its default ``twoloop``: a third of the CPU (the seven-speaker bench space's 90 s replay: 1.1 ->
        0.4 CPU-s, where the whole mix job takes 3.3) and, on that replay, nearer the source below
        8 kHz (wideband PESQ 4.31 -> 4.52 against the mix before encoding; the Opus rendition: 4.57)."""
        return {} if self is AudioFormat.OGG else {"aac_coder": "fast"}

    @property
    def container(self) -> str:
        """The FFmpeg muxer."""
        return "ogg" if self is AudioFormat.OGG else "mp4"

    @property
    def container_options(self) -> dict[str, str]:
        """Muxer options: the MP4's index first, so a player starts before the whole file is in."""
        return {} if self is AudioFormat.OGG else {"movflags": "+faststart"}
