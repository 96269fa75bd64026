"""``python -m ingest``: run the SFU with settings from the environment."""

from __future__ import annotations

import asyncio
import logging
import os

from ingest.server import serve
from spaces.settings import Settings


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("SPACES_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiortc and aioice log every packet problem at INFO/WARNING; keep ours readable.
    for noisy in ("aiortc", "aioice"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = Settings.from_env()
    if settings.sfu_loop == "uvloop":
        import uvloop

        uvloop.run(serve(settings))
    else:
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
