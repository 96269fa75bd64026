"""The ``spaces`` command: run the stack, import spaces, watch and rerun them.

The core never imports a stage: ``up`` starts each one as a process by its
module path, and jobs are enqueued by dotted name.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from spaces import queue, supervisor
from spaces.blobstore import open_blob_store
from spaces.catalog import Catalog, open_catalog
from spaces.exceptions import SpacesError
from spaces.importer import TrackFile, import_space
from spaces.languages import AUTO, check_language, language_note
from spaces.models import Space, SpaceState, Visibility
from spaces.progress import watch
from spaces.settings import Settings

log = logging.getLogger("spaces")


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
    parser = argparse.ArgumentParser(prog="spaces", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the whole stack: API, SFU and workers (and Redis if needed)")
    up.add_argument("--workers", type=int, default=0, help="worker processes (default: SPACES_WORKERS or one per CPU)")
    up.set_defaults(run=_up)

    api = sub.add_parser("api", help="run the API and web pages")
    api.set_defaults(run=lambda s, a: supervisor.run_api(s))

    worker = sub.add_parser("worker", help="run a pipeline worker")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.set_defaults(run=lambda s, a: supervisor.run_worker(s, burst=a.burst))

    imp = sub.add_parser("import", help="import a space recorded elsewhere, one file per speaker")
    imp.add_argument("tracks", nargs="+", metavar="SPEAKER=FILE")
    imp.add_argument("--title", required=True)
    imp.add_argument("--host", default="", help="host's name (default: the first speaker)")
    imp.add_argument("--offset", action="append", default=[], metavar="SPEAKER=SECONDS",
                     help="where a speaker's file starts on the room clock (default 0)")
    imp.add_argument("--private", action="store_true", help="only token holders see it")
    imp.add_argument("--language", default=AUTO, metavar="CODE",
                     help="language of the space (a Whisper code: en, fr, de, ...); default auto: "
                          "each speaker's detected from their speech")
    imp.add_argument("--no-wait", action="store_true", help="return once the pipeline is enqueued")
    imp.add_argument("--timeout", type=float, default=3600, help="seconds to wait for processing")
    imp.set_defaults(run=_import)

    status = sub.add_parser("status", help="state and per-stage progress of a space")
    status.add_argument("space_id")
    status.set_defaults(run=_status)

    reprocess = sub.add_parser("reprocess", help="rerun the pipeline (e.g. with a better WHISPER_MODEL)")
    reprocess.add_argument("space_id")
    reprocess.add_argument("--no-wait", action="store_true")
    reprocess.add_argument("--timeout", type=float, default=3600)
    reprocess.set_defaults(run=_reprocess)
    return parser


def _up(settings: Settings, args: argparse.Namespace) -> int:
    return supervisor.run_stack(settings, workers=args.workers or settings.worker_count)


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
    print(f"importing {len(tracks)} tracks...", file=sys.stderr)
    space = import_space(
        open_blob_store(settings),
        catalog,
        tracks,
        title=args.title,
        host=args.host,
        visibility=Visibility.PRIVATE if args.private else Visibility.PUBLIC,
        language=language,
    )
    queue.enqueue_finalize(settings, space.space_id)
    return _finish(settings, catalog, space.space_id, args)


def _status(settings: Settings, args: argparse.Namespace) -> int:
    space = _catalog(settings).get_space(args.space_id)
    print(f"{space.space_id}  {space.title!r}  {space.state}" + (" (partial)" if space.partial else ""))
    for stage, fraction in sorted(space.progress.items()):
        print(f"  {stage:<32} {fraction * 100:5.1f}%")
    print(f"  language: {space.language}")
    for name, lang in sorted(space.languages.items()):
        how = "set" if lang.source == "set" else f"{lang.source}, p={lang.probability:.2f}"
        print(f"  {name}: {lang.language} ({how})")
        if not lang.model_speaks:
            print(f"  warning: {language_note(name, lang.language)}")
    if space.error:
        print(f"  error: {space.error}")
    return 1 if space.state is SpaceState.FAILED else 0


def _reprocess(settings: Settings, args: argparse.Namespace) -> int:
    catalog = _catalog(settings)
    catalog.get_space(args.space_id)
    run = queue.next_run(settings, args.space_id)
    queue.enqueue_finalize(settings, args.space_id, run=run)
    print(f"reprocessing {args.space_id} (run {run})", file=sys.stderr)
    return _finish(settings, catalog, args.space_id, args)


def _finish(settings: Settings, catalog: Catalog, space_id: str, args: argparse.Namespace) -> int:
    if args.no_wait:
        print(space_id)
        return 0
    space: Space = watch(catalog, space_id, timeout=args.timeout, started=time.monotonic())
    if space.state is SpaceState.FAILED:
        print(f"error: processing failed: {space.error}", file=sys.stderr)
        return 1
    print(f"space {space_id} is {space.state}: replay at {settings.api_url}/spaces/{space_id}/replay")
    print(space_id)
    return 0


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
