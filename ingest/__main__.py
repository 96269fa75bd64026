"""``python -m ingest``: run the SFU with settings from the environment."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from ingest.server import serve
from spaces.exceptions import SpacesError
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
    try:
        if settings.sfu_loop == "uvloop":
            import uvloop

            uvloop.run(serve(settings))
        else:
            asyncio.run(serve(settings))
    except SpacesError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from e


if __name__ == "__main__":
    main()
