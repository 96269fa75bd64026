"""What each ``spaces`` command does (the command line itself is ``spaces.cli``).

Each takes the settings and the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from spaces import layout, progress, queue, retention, supervisor
from spaces.blobstore import open_blob_store
from spaces.catalog import Catalog, SpaceFilter, open_catalog
from spaces.exceptions import NotFound, SpacesError
from spaces.importer import TrackFile, import_space
from spaces.languages import check_language, language_note
from spaces.models import Space, SpaceState, Visibility
from spaces.progress import duration_text, plural, stage_label, state_label, watch
from spaces.settings import Settings


def up(settings: Settings, args: argparse.Namespace) -> int:
    nodes = args.sfu or settings.sfu_nodes or len(os.sched_getaffinity(0))
    return supervisor.run_stack(settings, workers=args.workers or settings.worker_count, sfu_nodes=nodes)


def import_files(settings: Settings, args: argparse.Namespace) -> int:
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


def list_spaces(settings: Settings, args: argparse.Namespace) -> int:
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


def status(settings: Settings, args: argparse.Namespace) -> int:
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


def reprocess(settings: Settings, args: argparse.Namespace) -> int:
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


def delete(settings: Settings, args: argparse.Namespace) -> int:
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


def erase(settings: Settings, args: argparse.Namespace) -> int:
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


def sweep_retention(settings: Settings, args: argparse.Namespace) -> int:
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
