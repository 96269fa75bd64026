"""A live space the host deletes through the API ends first, keeps nothing, and is gone."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from rq import Queue

from ingest.client import PcmTrack, SpaceClient
from replay_api.app import create_app
from spaces import keys
from spaces.blobstore import open_blob_store
from spaces.catalog import open_catalog
from spaces.exceptions import NotFound
from spaces.models import SpaceState
from spaces.queue import connect, job_id
from spaces.settings import Settings
from spaces.tokens import Role
from tests.support.services import free_port
from tests.support.sfu import VOICE_A, get_space, make_space, rtc_url, running_sfu, speech48k, token, wait_until
from tests.support.workers import Workers


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return replace(
        settings, sfu_port=free_port(), sfu_segment_seconds=1, sfu_empty_timeout=30, sfu_ice_addresses="127.0.0.1"
    )


def test_deleting_a_live_space_ends_it_and_leaves_nothing(live_settings: Settings) -> None:
    settings = live_settings
    space_id = make_space(settings, title="Deleted while live")
    blobs = open_blob_store(settings)
    source = speech48k("The weather was lovely this morning, so we walked down to the river.", VOICE_A, lead=0.5)
    workers = Workers(settings)

    async def scenario() -> None:
        async with running_sfu(settings) as running:
            url = rtc_url(settings, space_id)
            listener = SpaceClient(url, token(settings, space_id, "lee", Role.LISTENER))
            await listener.connect()
            host = SpaceClient(url, token(settings, space_id, "host", Role.HOST), track=PcmTrack(source))
            await host.connect()
            # Some of the host's segments are in the blob store: the recording is under way.
            await wait_until(lambda: len(list(blobs.list(keys.space_prefix(space_id)))) >= 3, 20)
            assert get_space(settings, space_id).state is SpaceState.LIVE

            def delete() -> int:
                with TestClient(create_app(settings)) as api:
                    bearer = {"Authorization": f"Bearer {token(settings, space_id, 'host', Role.HOST)}"}
                    return api.delete(f"/spaces/{space_id}", headers=bearer).status_code

            assert await asyncio.to_thread(delete) == 202
            for client in (listener, host):
                await wait_until(lambda c=client: any(m["type"] == "ended" for m in c.messages), 10)  # type: ignore[misc]
            assert [m["reason"] for m in host.messages if m["type"] == "ended"] == ["the host deleted the space"]
            await wait_until(lambda: space_id not in running.sfu.rooms.rooms, 10)
            for client in (listener, host):
                await client.close()

    try:
        asyncio.run(scenario())
        # The room was not handed over: no finalize job, the spool is gone.
        queue = Queue(settings.queue_name, connection=connect(settings))
        assert job_id(space_id, "finalize") not in queue.job_ids
        assert not (settings.spool_dir / space_id).exists()
        workers.start()
        catalog = open_catalog(settings)
        deadline = time.monotonic() + 120
        while True:
            try:
                catalog.get_space(space_id)
            except NotFound:
                break
            assert time.monotonic() < deadline, "the deletion did not run"
            time.sleep(0.2)
        assert list(blobs.list(keys.space_prefix(space_id))) == []
        catalog.close()
    finally:
        workers.stop_all()
        queue = Queue(settings.queue_name, connection=connect(settings))
        queue.empty()
        queue.delete(delete_jobs=True)
