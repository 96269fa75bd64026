"""The ``spaces`` command: run the stack, import spaces, watch and rerun them.

The core never imports a stage: ``up`` starts each one as a process by its
module path, and jobs are enqueued by dotted name.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from spaces import commands, supervisor
from spaces.exceptions import SpacesError
from spaces.languages import AUTO
from spaces.models import SpaceState
from spaces.settings import Settings

log = logging.getLogger("spaces")

DESCRIPTION = """\
Record, transcribe and replay live audio spaces.

Run everything on this machine with `spaces up`, then open the address it
prints. Spaces recorded elsewhere come in with `spaces import`."""

EPILOG = """\
examples:
  spaces up                                   run the API, the SFU and the workers
  spaces import --title "Cards night" alice=alice.wav bob=bob.ogg --offset bob=2.5
                                              import one file per speaker and wait for the replay
  spaces list                                 the newest spaces: id, state, length, speakers
  spaces status 3f2a9c0d1e4b5a69              where a space is, its speakers and replay address
  spaces reprocess 3f2a9c0d1e4b5a69           transcribe it again (e.g. after changing WHISPER_MODEL)

Settings come from the environment (DATABASE_URL, REDIS_URL, WHISPER_MODEL,
SPACES_*); see the README. `spaces COMMAND --help` tells more about each command."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env()
        result: int = args.run(settings, args)
        return result
    except SpacesError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spaces", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (debug messages)")
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(name: str, summary: str, examples: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=f"examples:\n{examples}" if examples else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    up = command(
        "up", "run the whole stack: API, SFU and workers (and Redis if needed)", "  spaces up\n  spaces up --workers 4"
    )
    up.add_argument("--workers", type=int, default=0, help="worker processes (default: SPACES_WORKERS or one per CPU)")
    up.add_argument(
        "--sfu",
        type=int,
        default=0,
        metavar="N",
        help="SFU nodes, on consecutive ports (default: SPACES_SFU_NODES or one per CPU)",
    )
    up.set_defaults(run=commands.up)

    sfu = command("sfu", "run one SFU node (for SFU nodes on other machines)")
    sfu.set_defaults(run=lambda s, a: supervisor.run_sfu(s))

    api = command("api", "run the API and web pages")
    api.set_defaults(run=lambda s, a: supervisor.run_api(s))

    worker = command("worker", "run a pipeline worker")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.add_argument(
        "--live", action="store_true", help="serve the live queue: room agents (live captions), one space at a time"
    )
    worker.set_defaults(run=lambda s, a: supervisor.run_worker(s, burst=a.burst, live=a.live))

    imp = command(
        "import",
        "import a space recorded elsewhere, one file per speaker",
        '  spaces import --title "Cards night" alice=alice.wav bob=bob.ogg\n'
        '  spaces import --title "Late show" --offset bob=2.5 --private alice=a.m4a bob=b.mp3',
    )
    imp.add_argument("tracks", nargs="+", metavar="SPEAKER=FILE", help="a speaker's name and their audio file")
    imp.add_argument("--title", required=True)
    imp.add_argument("--host", default="", help="host's name (default: the first speaker)")
    imp.add_argument(
        "--offset",
        action="append",
        default=[],
        metavar="SPEAKER=SECONDS",
        help="where a speaker's file starts on the room clock (default 0)",
    )
    imp.add_argument("--private", action="store_true", help="only token holders see it")
    imp.add_argument(
        "--language",
        default=AUTO,
        metavar="CODE",
        help="language of the space (a Whisper code: en, fr, de, ...); default auto: "
        "each speaker's detected from their speech",
    )
    imp.add_argument("--no-wait", action="store_true", help="return once the pipeline is enqueued")
    imp.add_argument("--timeout", type=float, default=3600, help="seconds to wait for processing")
    imp.set_defaults(run=commands.import_files)

    listing = command(
        "list",
        "the newest spaces: id, state, length, title and speakers",
        "  spaces list\n  spaces list --limit 50 --state failed",
    )
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--state", choices=[str(s) for s in SpaceState], help="only spaces in this state")
    listing.set_defaults(run=commands.list_spaces)

    status = command(
        "status",
        "where a space is: state, length, speakers, replay address and progress",
        "  spaces status 3f2a9c0d1e4b5a69",
    )
    _space_id(status)
    status.set_defaults(run=commands.status)

    reprocess = command(
        "reprocess",
        "rerun the pipeline (e.g. with a better WHISPER_MODEL)",
        "  WHISPER_MODEL=base spaces reprocess 3f2a9c0d1e4b5a69",
    )
    _space_id(reprocess)
    _waits(reprocess, "run", 3600)
    reprocess.set_defaults(run=commands.reprocess)

    delete = command(
        "delete",
        "delete a space: every object (every version) and catalog row; a live one ends first",
        "  spaces delete 3f2a9c0d1e4b5a69",
    )
    _space_id(delete)
    _waits(delete, "deletion", 600)
    delete.set_defaults(run=commands.delete)

    erase = command(
        "erase",
        "erase one speaker from a processed space: their audio, words, captions and search",
        "  spaces erase 3f2a9c0d1e4b5a69 bob",
    )
    _space_id(erase)
    erase.add_argument("speaker")
    _waits(erase, "erasure", 3600)
    erase.set_defaults(run=commands.erase)

    sweep = command(
        "retention",
        "apply retention now (SPACES_RETENTION_DAYS, SPACES_RETENTION_KEEP, per-space)",
        "  SPACES_RETENTION_DAYS=90 SPACES_RETENTION_KEEP=mix,transcript spaces retention --dry-run",
    )
    sweep.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    sweep.set_defaults(run=commands.sweep_retention)
    return parser


def _space_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "space_id", help="the space's id (one that begins with '-' goes after '--', e.g. spaces status -- -Xy2...)"
    )


def _waits(parser: argparse.ArgumentParser, what: str, default: float) -> None:
    """``--no-wait`` and ``--timeout`` for a command that enqueues work and waits for it."""
    parser.add_argument("--no-wait", action="store_true", help=f"return once the {what} is enqueued")
    parser.add_argument("--timeout", type=float, default=default, help=f"seconds to wait for the {what}")


if __name__ == "__main__":
    sys.exit(main())
