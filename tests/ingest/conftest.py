"""Fixtures for SFU tests; their helpers are in ``tests.support.sfu``."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from spaces.settings import Settings
from tests.support import sfu  # noqa: F401 - restricts ICE to loopback for the whole process
from tests.support.services import free_port


@pytest.fixture
def sfu_settings(settings: Settings) -> Settings:
    """The shared ``settings`` fixture, with SFU knobs suited to short tests."""
    return replace(
        settings,
        sfu_port=free_port(),
        sfu_segment_seconds=2,
        sfu_empty_timeout=2,
        sfu_ice_addresses="127.0.0.1",
        operator_token=secrets.token_urlsafe(32),
        # No room agent writes HLS here, so the cap refuses (test_hls_tier sends listeners to HLS).
        live_hls=0,
    )
