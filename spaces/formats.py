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
    def container(self) -> str:
        """The FFmpeg muxer."""
        return "ogg" if self is AudioFormat.OGG else "mp4"

    @property
    def container_options(self) -> dict[str, str]:
        """Muxer options: the MP4's index first, so a player starts before the whole file is in."""
        return {} if self is AudioFormat.OGG else {"movflags": "+faststart"}
