"""Load bench: N rooms x (2 speakers + M listeners) for T minutes, the whole stack on one machine.

    .venv/bin/python -m bench.load                                  # 2 rooms x (2 + 10), 2 minutes
    .venv/bin/python -m bench.load --rooms 4 --listeners 40 --minutes 3

Modelled on LiveKit's ``lk load-test``, but with everything of ours running
too, on loopback only and bounded in time. Real processes, started by the
project's own entry points in a temporary data directory (embedded blob
store and SQLite catalog; the local Redis with a queue of our own, whose
jobs are deleted at the end, never a FLUSHDB):

- the SFU (``python -m ingest``), the API (``spaces api``) and one pipeline
  worker (``spaces worker``);
- before the rooms open, ``--seed`` short two-speaker spaces are imported and
  processed, so replay and search have something to serve; ``--backlog``
  more are imported and enqueued one by one while the rooms are live, so the
  worker transcribes while the SFU forwards;
- rooms are created through the API (``POST /spaces``, join tokens from
  ``POST /spaces/{id}/tokens``); per room the host and one invited speaker
  loop espeak-ng speech (turns taken in alternation) through aiortc
  ``SpaceClient``s, and M listeners receive. Clients run in a few child
  processes; a listener only counts packets per stream (RTP sequence
  numbers, after SRTP), it does not decode;
- an HTTP client process asks the API for random 64 KiB ranges of the
  seeded replays and for two-word searches, at a fixed rate, through the
  live window and the drain after it.

After T minutes the speakers stop sending, the hosts end their spaces and
the bench waits until every space is READY. It reports packet loss per
subscribed stream, recording completeness per speaker (seconds in the blob
store against seconds sent), the queue drain time, API latency and errors
per phase, and the CPU of every process.

The per-address limits (SFU join burst, API search and token rates) are
lifted: one loopback address plays every user here.
"""
