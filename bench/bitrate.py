"""The Opus bitrate a bench's speakers send at, as an argument (``--track-kbps``, ``--kbps``)."""

from __future__ import annotations

import argparse

from ingest.bitrate import BROWSER_BITRATE
from spaces.settings import OPUS_BITRATES, Settings


def speaker_kbps() -> int:
    """Opus kb/s speakers' browsers send at: what the SFU asks them for (``SPACES_SFU_OPUS_BITRATE``),
    else their own default."""
    return round((Settings.from_env().sfu_opus_bitrate or BROWSER_BITRATE) / 1000)


def kbps_argument(text: str) -> int:
    """An argument in Opus kb/s, within what Opus codes."""
    value = int(text)
    low, high = (bitrate // 1000 for bitrate in OPUS_BITRATES)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"Opus codes {low} to {high} kb/s, not {value}")
    return value
