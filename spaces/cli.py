"""The ``spaces`` command: run the stack, import spaces, watch and rerun them.

The core never imports a stage: ``up`` starts each one as a process by its
module path, and jobs are enqueued by dotted name.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from spaces import layout, progress, queue, retention, supervisor
from spaces.blobstore import open_blob_store
from spaces.catalog import Catalog, SpaceFilter, open_catalog
from spaces.exceptions import NotFound, SpacesError
from spaces.importer import TrackFile, import_space
from spaces.languages import AUTO, check_language, language_note
from spaces.models import Space, SpaceState, Visibility
from spaces.progress import duration_text, plural, stage_label, state_label, watch
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
    up.set_defaults(run=_up)

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
    imp.set_defaults(run=_import)

    listing = command(
        "list",
        "the newest spaces: id, state, length, title and speakers",
        "  spaces list\n  spaces list --limit 50 --state failed",
    )
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--state", choices=[str(s) for s in SpaceState], help="only spaces in this state")
    listing.set_defaults(run=_list)

    status = command(
        "status",
        "where a space is: state, length, speakers, replay address and progress",
        "  spaces status 3f2a9c0d1e4b5a69",
    )
    status.add_argument("space_id")
    status.set_defaults(run=_status)

    reprocess = command(
        "reprocess",
        "rerun the pipeline (e.g. with a better WHISPER_MODEL)",
        "  WHISPER_MODEL=base spaces reprocess 3f2a9c0d1e4b5a69",
    )
    reprocess.add_argument("space_id")
    _waits(reprocess, "run", 3600)
    reprocess.set_defaults(run=_reprocess)

    delete = command(
        "delete",
        "delete a space: every object (every version) and catalog row; a live one ends first",
        "  spaces delete 3f2a9c0d1e4b5a69",
    )
    delete.add_argument("space_id")
    _waits(delete, "deletion", 600)
    delete.set_defaults(run=_delete)

    erase = command(
        "erase",
        "erase one speaker from a processed space: their audio, words, captions and search",
        "  spaces erase 3f2a9c0d1e4b5a69 bob",
    )
    erase.add_argument("space_id")
    erase.add_argument("speaker")
    _waits(erase, "erasure", 3600)
    erase.set_defaults(run=_erase)

    sweep = command(
        "retention",
        "apply retention now (SPACES_RETENTION_DAYS, SPACES_RETENTION_KEEP, per-space)",
        "  SPACES_RETENTION_DAYS=90 SPACES_RETENTION_KEEP=mix,transcript spaces retention --dry-run",
    )
    sweep.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    sweep.set_defaults(run=_retention)
    return parser


def _waits(parser: argparse.ArgumentParser, what: str, default: float) -> None:
    """``--no-wait`` and ``--timeout`` for a command that enqueues work and waits for it."""
    parser.add_argument("--no-wait", action="store_true", help=f"return once the {what} is enqueued")
    parser.add_argument("--timeout", type=float, default=default, help=f"seconds to wait for the {what}")


def _up(settings: Settings, args: argparse.Namespace) -> int:
    nodes = args.sfu or settings.sfu_nodes or len(os.sched_getaffinity(0))
    return supervisor.run_stack(settings, workers=args.workers or settings.worker_count, sfu_nodes=nodes)


def _import(settings: Settings, args: argparse.Namespace) -> int:
    offsets = dict(_pair(o, "--offset") for o in args.offset)
    tracks = []
    for item in args.tracks:
        speaker, path = _pair(item, "track")
        tracks.append(TrackFile(speaker=speaker, path=Path(path), offset=_seconds(offsets.pop(speaker, "0"))))
    if offsets:
        raise SpacesError(f"--offset names unknown speakers: {', '.join(offsets)}")
    catalog = _catalog(settings)
    language = check_language(args.language)  # before any upload: a typo costs nothing
    started = time.monotonic()
    print(f"importing {plural(len(tracks), 'track')}: {', '.join(t.speaker for t in tracks)}", file=sys.stderr)
    view = progress.board(started)
    space = import_space(
        open_blob_store(settings),
        catalog,
        tracks,
        title=args.title,
        host=args.host,
        visibility=Visibility.PRIVATE if args.private else Visibility.PUBLIC,
        language=language,
        on_progress=lambda speaker, fraction: view.step(f"encode:{speaker}", fraction, time.monotonic()),
    )
    queue.enqueue_finalize(settings, space.space_id)
    return _finish(settings, catalog, space.space_id, args, run=0, started=started, view=view)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    flt = SpaceFilter(state=SpaceState(args.state) if args.state else None, include_private=True)
    spaces = _catalog(settings).list_spaces(flt, limit=args.limit)
    if not spaces:
        print("no spaces yet" + (f" in state {args.state}" if args.state else ""))
        return 0
    rows = [
        (
            s.space_id,
            _when(s.created_at),
            str(s.state),
            duration_text(s.duration),
            s.title + (" (private)" if s.visibility is Visibility.PRIVATE else ""),
            ", ".join(s.speakers),
        )
        for s in spaces
    ]
    header = ("ID", "CREATED", "STATE", "LENGTH", "TITLE", "SPEAKERS")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    space = _catalog(settings).get_space(args.space_id)
    print(f"{space.space_id}  {space.title!r}")
    state = state_label(space.state) + (" (partial recording)" if space.partial else "")
    if space.run:
        state += f", run {space.run}"
    print(f"  state       {state}")
    print(f"  created     {_when(space.created_at)}")
    print(f"  length      {duration_text(space.duration)}")
    print(f"  speakers    {', '.join(space.speakers) or '(none yet)'}")
    print(f"  visibility  {space.visibility}")
    replay = _replay_url(settings, space)
    if replay:
        print(f"  replay      {replay}")
    print(f"  language    {space.language}")
    for name, lang in sorted(space.languages.items()):
        how = "set" if lang.source == "set" else f"{lang.source}, p={lang.probability:.2f}"
        print(f"    {name}: {lang.language} ({how})")
        if not lang.model_speaks:
            print(f"  warning     {language_note(name, lang.language)}")
    if space.error:
        print(f"  error       {space.error}")
    if space.progress:
        print("  progress")
        for stage, fraction in sorted(space.progress.items()):
            print(f"    {stage_label(stage):<32} {fraction * 100:5.1f} %")
    return 1 if space.state is SpaceState.FAILED else 0


def _reprocess(settings: Settings, args: argparse.Namespace) -> int:
    catalog = _catalog(settings)
    space = catalog.get_space(args.space_id)
    started = time.monotonic()
    run = queue.next_run(settings, args.space_id, after=space.run)
    # The run is the space's from now: status and the watch below show its
    # progress only, not the last run's (and not its "ready").
    catalog.start_run(args.space_id, run)
    queue.enqueue_finalize(settings, args.space_id, run=run)
    print(f"reprocessing {args.space_id} (run {run})", file=sys.stderr)
    return _finish(settings, catalog, args.space_id, args, run=run, started=started)


def _delete(settings: Settings, args: argparse.Namespace) -> int:
    catalog = _catalog(settings)
    previous = catalog.mark_deleting(args.space_id)
    if previous is None:
        raise NotFound(f"no space {args.space_id!r}")
    queue.enqueue_deletion(settings, args.space_id, was_live=previous in (SpaceState.LIVE, SpaceState.CREATED))
    print(f"deleting {args.space_id}", file=sys.stderr)
    if args.no_wait:
        return 0
    _wait(lambda: not _exists(catalog, args.space_id), args.timeout, f"deletion of {args.space_id}")
    print(f"space {args.space_id} deleted")
    return 0


def _erase(settings: Settings, args: argparse.Namespace) -> int:
    catalog = _catalog(settings)
    space = catalog.get_space(args.space_id)
    if space.state not in (SpaceState.READY, SpaceState.FAILED):
        raise SpacesError(f"space {args.space_id} is {space.state}: a speaker is erased once it is processed")
    manifest = layout.read_manifest(open_blob_store(settings), args.space_id)
    if args.speaker not in {s for _, s in manifest.tracks + manifest.erased}:
        raise NotFound(f"no speaker {args.speaker!r} in space {args.space_id!r}")
    if catalog.request_erasure(args.space_id, args.speaker, now=time.time()):
        catalog.set_progress(args.space_id, f"erase:{args.speaker}", 0.0)
    queue.enqueue_erasure(settings, args.space_id, args.speaker)
    print(f"erasing {args.speaker} from {args.space_id}", file=sys.stderr)
    if args.no_wait:
        return 0
    _wait(
        lambda: catalog.erasures(args.space_id).get(args.speaker) == "erased",
        args.timeout,
        f"erasure of {args.speaker}",
    )
    print(f"{args.speaker} erased from {args.space_id}")
    return 0


def _retention(settings: Settings, args: argparse.Namespace) -> int:
    catalog = _catalog(settings)
    blobs = open_blob_store(settings)
    expiries = list(retention.plan(settings, catalog, blobs, now=time.time()))
    verb = "would delete" if args.dry_run else "deleting"
    for e in expiries:
        what = "the whole space" if e.whole else ", ".join(e.kinds)
        print(f"{e.space_id}  {e.age_days:8.2f} days  {verb} {what} ({len(e.keys)} objects)")
        if args.dry_run:
            for key in e.keys:
                print(f"    {key}")
    if not expiries:
        print("nothing to delete")
    if args.dry_run:
        return 0
    for e in expiries:
        retention.apply(settings, catalog, blobs, e)
    return 0


def _exists(catalog: Catalog, space_id: str) -> bool:
    try:
        catalog.get_space(space_id)
    except NotFound:
        return False
    return True


def _wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SpacesError(f"{what} not finished after {timeout:.0f} s (the workers go on with it)")
        time.sleep(0.5)


def _finish(
    settings: Settings,
    catalog: Catalog,
    space_id: str,
    args: argparse.Namespace,
    *,
    run: int,
    started: float,
    view: progress.Board | None = None,
) -> int:
    if args.no_wait:
        if view is not None:
            view.close()
        print(space_id)
        return 0
    space: Space = watch(catalog, space_id, run=run, timeout=args.timeout, started=started, view=view)
    if space.state is SpaceState.FAILED:
        print(f"error: processing failed: {space.error}", file=sys.stderr)
        return 1
    print(f"space {space_id} is {space.state}: replay at {settings.api_url}/spaces/{space_id}/replay")
    print(space_id)
    return 0


def _replay_url(settings: Settings, space: Space) -> str:
    """Where the replay is, if it is served (ready, or an earlier run's while reprocessing)."""
    if space.state is SpaceState.READY or (
        space.published and space.state in (SpaceState.PROCESSING, SpaceState.FAILED)
    ):
        url = f"{settings.api_url}/spaces/{space.space_id}/replay"
        if space.state is not SpaceState.READY:
            url += "  (the last complete run's)"
        if space.visibility is Visibility.PRIVATE:
            url += "  (private: open it with a token)"
        return url
    return ""


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _catalog(settings: Settings) -> Catalog:
    catalog = open_catalog(settings)
    catalog.create_schema()
    return catalog


def _pair(item: str, what: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name or not value:
        raise SpacesError(f"{what} must look like NAME=VALUE, got {item!r}")
    return name, value


def _seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError as e:
        raise SpacesError(f"offset must be a number of seconds, got {value!r}") from e


if __name__ == "__main__":
    sys.exit(main())
