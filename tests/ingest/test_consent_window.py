"""``ingest.consent`` replaces one method of aioice's ``Connection``: the shape it relies on is pinned here.

If aioice changes how ``connect()`` starts its consent checks, or the
attributes ``ConsentChecks`` reads, these fail before any speaker is cut off.
"""

from __future__ import annotations

import asyncio
import inspect

import aioice.ice
from aioice import stun
from aiortc import RTCPeerConnection

from ingest.consent import ConsentChecks, keep_consent, window
from ingest.ice import rtc_configuration


def test_aioice_starts_consent_checks_through_the_replaced_method() -> None:
    assert aioice.ice.CONSENT_INTERVAL * aioice.ice.CONSENT_FAILURES == window() == 30
    connect = inspect.getsource(aioice.ice.Connection.connect)
    assert "self._query_consent_task = asyncio.create_task(self.query_consent())" in connect
    close = inspect.getsource(aioice.ice.Connection.close)
    assert "self._query_consent_task" in close
    for name in ("build_request", "close", "query_consent"):
        assert callable(getattr(aioice.ice.Connection, name)), name
    request = inspect.signature(aioice.ice.StunProtocol.request).parameters
    assert {"request", "addr", "integrity_key", "retransmissions"} <= set(request)
    assert issubclass(stun.TransactionTimeout, stun.TransactionError)
    assert issubclass(stun.TransactionFailed, stun.TransactionError)


def test_keep_consent_replaces_the_checks_of_one_connection() -> None:
    async def scenario() -> None:
        pc, other = RTCPeerConnection(rtc_configuration()), RTCPeerConnection(rtc_configuration())
        transport = pc.addTransceiver("audio").receiver.transport.transport
        untouched = other.addTransceiver("audio").receiver.transport.transport
        keep_consent(transport)
        method = transport._connection.query_consent
        assert isinstance(method.__self__, ConsentChecks)
        for attribute in ("_nominated", "remote_password", "_query_consent_task"):
            assert hasattr(transport._connection, attribute), attribute
        keep_consent(transport)
        assert transport._connection.query_consent.__self__ is method.__self__  # idempotent
        assert not isinstance(getattr(untouched._connection.query_consent, "__self__", None), ConsentChecks)
        await pc.close()
        await other.close()

    asyncio.run(scenario())
