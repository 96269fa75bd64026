"""A node's options: what ``Sfu`` takes from the settings, in the shapes its parts use."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.ice import CandidatePolicy, split_list
from ingest.recorder import RecorderOptions
from ingest.room import RoomOptions
from spaces.settings import Settings


@dataclass(frozen=True)
class SfuOptions:
    room: RoomOptions = field(default_factory=RoomOptions)
    join_rate: float = 5.0
    """Join attempts per second allowed from one address, after the burst."""
    join_burst: int = 50
    ice_addresses: list[str] = field(default_factory=list)
    joins_in_setup: int = 8
    """Joins in media setup at once (``ingest.admission``); the rest wait in line."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SfuOptions:
        return cls(
            room=RoomOptions(
                max_participants=settings.sfu_max_participants,
                hls_past_cap=bool(settings.live_hls and settings.live_captions),
                empty_timeout=settings.sfu_empty_timeout,
                setup_timeout=settings.sfu_setup_timeout,
                candidates=CandidatePolicy.build(
                    max_candidates=settings.sfu_max_remote_candidates,
                    excluded=settings.sfu_ice_excluded,
                    production=settings.env != "development",
                ),
                ice_servers=split_list(settings.sfu_ice_servers),
                opus_bitrate=settings.sfu_opus_bitrate,
                recorder=RecorderOptions(segment_seconds=settings.sfu_segment_seconds),
            ),
            join_burst=settings.sfu_join_burst,
            ice_addresses=split_list(settings.sfu_ice_addresses),
            joins_in_setup=settings.sfu_joins_in_setup,
        )
