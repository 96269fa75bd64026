"""The live HLS of a space: object names, playlists and cache rules, shared by the agent and the API.

The room agent writes (``workers.hls``), the API and any CDN serve
(``replay_api.routes.hls``); both need the same names and the same reading
of a stored playlist, so they live here. Under ``spaces/{id}/live/``:

``master.m3u8``
    the entry point: the audio rendition and a WebVTT subtitle rendition,
    stored once the audio playlist can be played (``LIVE_START_SEGMENTS``);
``audio.m3u8`` / ``subs.m3u8``
    media playlists, rewritten after each segment is stored: while live the
    last few segments (where a listener joins), every segment and
    ``EXT-X-ENDLIST`` once the space ends (the instant replay);
``audio.full.m3u8`` / ``subs.full.m3u8``
    every segment so far, for a restarted agent to continue from (not served);
``{seq:06d}.ts`` / ``{seq:06d}.vtt``
    AAC in MPEG-TS, and the captions of the same stretch of room time.

Segments are written once and never replaced (a restarted agent continues
the numbering after a discontinuity), so they may be cached for ever;
playlists change every segment, so caches keep them about a second.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from spaces.exceptions import InvalidInput

MASTER = "master.m3u8"
AUDIO = "audio.m3u8"
SUBS = "subs.m3u8"
#: The whole history of a live playlist (its own name: never served).
FULL = "full.m3u8"
PLAYLISTS = (MASTER, AUDIO, SUBS)

#: The fewest segments a live playlist may list when a player first gets it.
#: Chromium's native HLS starts three segments from a live playlist's end and
#: fails one that lists fewer ("Segment queue never had any data", reported as
#: DEMUXER_ERROR_COULD_NOT_PARSE), so the master playlist, which is what
#: ``hls_url`` waits for, is stored only once the audio playlist lists this many.
LIVE_START_SEGMENTS = 3

#: What a name under ``live/`` may look like: nothing else is served.
_SEGMENT = re.compile(r"^(\d{6})\.(ts|vtt)$")

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPES = {"ts": "video/mp2t", "vtt": "text/vtt; charset=utf-8"}

#: Segments never change once stored.
SEGMENT_CACHE = "public, max-age=31536000, immutable"
#: Players re-read a live playlist every target duration: a second of caching
#: lets a CDN absorb a crowd and still delays nobody by more than that.
PLAYLIST_CACHE = "public, max-age=1"
#: A closed playlist never changes again.
CLOSED_PLAYLIST_CACHE = "public, max-age=3600"


def prefix(space_id: str) -> str:
    return f"spaces/{space_id}/live/"


def key(space_id: str, name: str) -> str:
    """The blob key of one live object, its name checked first (bad names are a 4xx)."""
    return prefix(space_id) + check_name(name)


def full_key(space_id: str, playlist: str) -> str:
    """Where a media playlist's whole history is kept (``audio.m3u8`` -> ``audio.full.m3u8``)."""
    return prefix(space_id) + playlist.replace(".m3u8", "." + FULL)


def check_name(name: str) -> str:
    if name in PLAYLISTS or _SEGMENT.match(name):
        return name
    raise InvalidInput(f"no live object is named {name[:80]!r}: playlists are {', '.join(PLAYLISTS)}")


def media_type(name: str) -> str:
    check_name(name)
    return PLAYLIST_TYPE if name.endswith(".m3u8") else SEGMENT_TYPES[name.rsplit(".", 1)[1]]


def segment_name(seq: int, ext: str) -> str:
    return f"{seq:06d}.{ext}"


def segment_seq(name: str) -> int | None:
    match = _SEGMENT.match(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Entry:
    """One segment as a media playlist lists it."""

    seq: int
    start: float
    """Room time of its first sample."""
    duration: float
    discontinuity: bool = False
    """The encoder restarted before this segment (timestamps jump)."""


@dataclass(frozen=True)
class MediaPlaylist:
    ext: str
    """``ts`` or ``vtt``: which segments it lists."""
    target: int
    entries: tuple[Entry, ...] = ()
    ended: bool = False
    clock0: float | None = None
    """Wall-clock time of room-clock zero: each segment gets its EXT-X-PROGRAM-DATE-TIME,
    from which a player tells how far behind the room it is."""

    def add(self, entry: Entry) -> MediaPlaylist:
        return replace(self, entries=(*self.entries, entry))

    def render(self, *, window: int | None = None) -> str:
        """The playlist; while not ended, only its last ``window`` segments if given.

        Players join a live playlist at its first listed segment (Chromium's
        does), so what the window holds is how far behind the room a new
        listener starts; the closed playlist lists every segment.
        """
        shown = self.entries if self.ended or window is None else self.entries[-window:]
        dropped = self.entries[: len(self.entries) - len(shown)]
        first = shown[0].seq if shown else 0
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{self.target}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
            f"#EXT-X-DISCONTINUITY-SEQUENCE:{sum(e.discontinuity for e in dropped)}",
        ]
        for e in shown:
            if e.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if self.clock0 is not None:
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(self.clock0 + e.start)}")
            lines += [f"#EXT-X-ROOM-TIME:{e.start:.3f}", f"#EXTINF:{e.duration:.3f},", segment_name(e.seq, self.ext)]
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str, *, ext: str) -> MediaPlaylist:
        """Read back a playlist this module wrote (a restarted agent continues it)."""
        target = 2
        entries: list[Entry] = []
        pending_disc = False
        start = 0.0
        duration = 0.0
        ended = False
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("#EXT-X-TARGETDURATION:"):
                target = int(line.split(":", 1)[1])
            elif line == "#EXT-X-DISCONTINUITY":
                pending_disc = True
            elif line.startswith("#EXT-X-ROOM-TIME:"):
                start = float(line.split(":", 1)[1])
            elif line.startswith("#EXTINF:"):
                duration = float(line.split(":", 1)[1].rstrip(","))
            elif line == "#EXT-X-ENDLIST":
                ended = True
            elif line and not line.startswith("#"):
                seq = segment_seq(line)
                if seq is None:
                    raise InvalidInput(f"not a live segment: {line[:80]!r}")
                entries.append(Entry(seq, start, duration, pending_disc))
                pending_disc = False
        return cls(ext=ext, target=target, entries=tuple(entries), ended=ended)


def master(*, bandwidth: int, codecs: str, language: str) -> str:
    """The master playlist: one audio rendition with the captions as a subtitle rendition."""
    lang = f',LANGUAGE="{language}"' if language and language != "auto" else ""
    return (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Captions"{lang},DEFAULT=YES,AUTOSELECT=YES,'
        f'FORCED=NO,URI="{SUBS}"\n'
        f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS="{codecs}",SUBTITLES="subs"\n'
        f"{AUDIO}\n"
    )


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
