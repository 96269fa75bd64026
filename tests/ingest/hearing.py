"""What a client hears: packets received from a participant, and waiting for more of them.

Waits on counts rather than sleeping a fixed time and expecting a rate, so
a loaded machine makes a test slower, not red.
"""

from __future__ import annotations

from ingest.client import SpaceClient

#: Opus frames are 20 ms: a speaker sends 50 packets a second.
PACKETS_PER_SECOND = 50


def packets(client: SpaceClient, identity: str) -> int:
    """Packets ``client`` has received from ``identity`` so far."""
    slot = client.slot_of(identity)
    return client.received[slot].packets if slot is not None and slot in client.received else 0


async def hears(client: SpaceClient, identity: str, count: int = 40, *, timeout: float = 10.0) -> None:
    """Wait until ``count`` more packets from ``identity`` reach ``client`` (``TimeoutError`` if they do not).

    Counted on the slot ``identity`` has when they arrive: a speaker who
    rejoins may come back on another slot, or on the same one.
    """
    start = {slot: received.packets for slot, received in client.received.items()}

    def heard(c: SpaceClient) -> bool:
        slot = c.slot_of(identity)
        return slot is not None and slot in c.received and c.received[slot].packets >= start.get(slot, 0) + count

    await client.wait_for(heard, timeout=timeout)
