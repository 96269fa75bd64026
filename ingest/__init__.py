"""The live SFU: rooms, signaling, pass-through forwarding, per-speaker recording.

Run it with ``python -m ingest`` (settings from the environment). Modules,
one concept each:

- ``server``: the Starlette app (``/spaces/{id}/rtc`` WebSocket, ``/healthz``, ``/stats``)
- ``signaling``: the message protocol; ``exceptions``: the errors clients see
- ``rooms``, ``room``, ``participant``: who is in a room, negotiation, control
- ``forward``, ``fanout``, ``fastpath``: packets to listeners without decoding (the per-listener
  loop in C, ``fanout_build``); aiortc internals
- ``recorder``, ``oggwriter``, ``opus``, ``timeline``: Ogg/Opus segments on the room clock
- ``spool``, ``archive``, ``retry``, ``recovery``: the spool, uploads, finalizing, crash recovery
- ``client``: a reference Python client of the protocol (tests, benches)
"""
