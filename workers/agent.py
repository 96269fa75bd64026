"""The room agent: live captions of a space, made by a participant like any other.

When a space goes live the SFU enqueues ``live_room(space_id)`` on the
``live`` queue. The job joins the room through the SFU's own client with
an ``agent`` token (invisible, subscribed to every speaker, publishing no
audio), decodes each forwarding slot's Opus once, and runs one
:class:`~transcribe.streaming.StreamingTranscriber` per speaker. Caption
events go back to the SFU over the signaling socket (which relays them to
every participant) and into the space's Redis caption stream (the API's
Server-Sent Events); final ones are written to the catalog as live turns
(search while live, until the pipeline's transcript replaces them). With
``live_revise`` on, a :class:`~transcribe.revision.Reviser` hears the
room's finals again in long windows, on a thread of its own, and its
*settled* captions replace the finals everywhere but the live HLS
(which has published them). The
decoded audio and the captions also feed the room's live HLS
(``workers.hls``). The job returns when the room ends; an agent that
dies is replaced by the SFU, which enqueues the job again.

Packets arrive on the event loop; Whisper runs on a thread per speaker, so
a pass of half a second never delays the connection's own traffic (ICE
consent, DTLS, RTCP), nor another speaker's captions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
from faster_whisper import WhisperModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest.client import SpaceClient
from spaces import live_captions, tokens
from spaces.blobstore import BlobStore, open_blob_store
from spaces.catalog import Catalog, open_catalog
from spaces.exceptions import NotFound
from spaces.languages import AUTO
from spaces.models import Caption, Turn
from spaces.settings import Settings
from transcribe.language import speaks_language
from transcribe.live_audio import OpusStream
from transcribe.model import load_model, model_label
from transcribe.pass_meter import PassMeter, process_meter
from transcribe.revision import Reviser, RevisionOptions
from transcribe.room_context import Heard, RoomContext
from transcribe.streaming import PassCost, StreamingOptions, StreamingTranscriber
from workers.environment import Environment, environment
from workers.hls import HlsOptions, LiveHls

log = logging.getLogger(__name__)

AGENT_IDENTITY = "room-agent"
#: Seconds without packets after which a speaker's stream is taken as silence
#: (packets arriving later than this are placed where they belong anyway).
JITTER_MARGIN = 0.3
#: How often the transcription thread looks for new audio.
TICK = 0.05
#: Whisper passes the agent's model runs at once: two speakers' passes
#: overlap when one starts talking as the other's final pass runs.
LIVE_PASSES = 2
#: How often the revision thread asks whether a pass is due.
REVISE_TICK = 0.25
#: Added to the revision passes' nice value (their model's threads'): a pass of seconds that settles
#: text seconds old yields the cores to the interim and final passes, whose captions are due now.
REVISE_NICE = 10


@dataclass
class _Speaker:
    """One speaker's lane: audio waits in ``inbox`` for the speaker's own transcription thread."""

    transcriber: StreamingTranscriber
    fed_until: float
    inbox: queue.SimpleQueue[tuple[float, np.ndarray] | None] = field(default_factory=queue.SimpleQueue)
    thread: threading.Thread | None = None


@dataclass
class CaptionMaker:
    """One transcriber per speaker, each on a thread of its own; silence filled in where packets stop.

    A thread per speaker, not one for the room: a speaker's words never
    wait behind another speaker's Whisper pass (the model runs passes side
    by side, see :data:`LIVE_PASSES`; CTranslate2 releases the GIL).
    ``audio`` and ``stop`` are called from the agent's event loop;
    ``on_caption`` is called on the speakers' threads (and the revision thread's).
    """

    model: WhisperModel
    on_caption: Callable[[Caption], None]
    room_now: Callable[[], float]
    options: StreamingOptions = field(default_factory=StreamingOptions)
    final_model: WhisperModel | None = None
    """The final passes' model; None: ``model``."""
    reviser: Reviser | None = None
    """Hears the room's finals again, one pass at a time on a thread of its own; None: the finals stay.

    Each pass's CPU is charged to the speakers it settles (their shares of its
    speech): paid from their ``max_load`` as their finals are, so the interim
    passes get what is left and the agent stays within its budget per speaker.
    """
    meter: PassMeter = field(default_factory=process_meter)
    """What the revision passes cost: the transcribers' meter, which shares the model threads' CPU among passes."""
    revision: PassCost = field(default_factory=PassCost)
    _speakers: dict[str, _Speaker] = field(default_factory=dict)
    _room: RoomContext = field(default_factory=RoomContext)
    """The room's recent finals: every speaker's prompt, and the audio their final passes hear first."""
    _finals: queue.SimpleQueue[tuple[Caption, Heard]] = field(default_factory=queue.SimpleQueue)
    """Finals and their audio on their way from the speakers' threads to the reviser's (which alone touches it)."""
    _revising: threading.Thread | None = None
    _finished: threading.Event = field(default_factory=threading.Event)
    """Set once every speaker's thread has ended: the reviser settles what is left."""
    _revision_failed: bool = False
    _started: bool = False
    _stopped: bool = False

    def start(self) -> None:
        self._started = True
        for s in self._speakers.values():
            self._launch(s)
        if self.reviser is not None:
            self._revising = threading.Thread(target=self._revise, args=(self.reviser,), name="revision", daemon=True)
            self._revising.start()

    def audio(self, speaker: str, at: float, samples: np.ndarray) -> None:
        if self._stopped:
            return
        s = self._speakers.get(speaker)
        if s is None:
            live = StreamingTranscriber(
                self.model,
                speaker=speaker,
                final_model=self.final_model,
                options=self.options,
                room=self._room,
                on_final=None if self.reviser is None else self._on_final,
            )
            s = self._speakers[speaker] = _Speaker(live, at)
            if self._started:
                self._launch(s)
        s.inbox.put((at, samples))

    def stop(self) -> None:
        """Finish every open utterance (their final captions) and end the threads."""
        self._stopped = True
        speakers = list(self._speakers.values())
        for s in speakers:
            s.inbox.put(None)
        for s in speakers:
            if s.thread is not None:
                s.thread.join()
        self._finished.set()
        if self._revising is not None:
            self._revising.join()
        for s in speakers:
            t = s.transcriber
            log.info("captions of %s: interim %s, final %s", t.speaker, t.interims, t.finals)
        if self.reviser is not None:
            log.info("revision: %s", self.revision)

    @property
    def busy_seconds(self) -> float:
        return sum(s.transcriber.busy_seconds for s in list(self._speakers.values()))

    def _launch(self, s: _Speaker) -> None:
        s.thread = threading.Thread(target=self._run, args=(s,), name=f"captions-{s.transcriber.speaker}", daemon=True)
        s.thread.start()

    def _run(self, s: _Speaker) -> None:
        while True:
            try:
                item = s.inbox.get(timeout=TICK)
            except queue.Empty:
                item = ()  # type: ignore[assignment]
            if item is None:
                break
            if item:
                self._take(s, *item)
                while True:  # everything waiting, before a pass
                    try:
                        more = s.inbox.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._emit(s.transcriber.finish())
                        return
                    self._take(s, *more)
            self._fill_silence(s)
            self._emit(s.transcriber.process_iter())
        self._emit(s.transcriber.finish())

    @staticmethod
    def _take(s: _Speaker, at: float, samples: np.ndarray) -> None:
        s.transcriber.insert_audio_chunk(samples, at)
        s.fed_until = s.transcriber.end_time or at

    def _fill_silence(self, s: _Speaker) -> None:
        # A speaker who stops sending (muted, DTX, gone) is silent: without it
        # no utterance would ever end.
        horizon = self.room_now() - JITTER_MARGIN
        if horizon - s.fed_until > JITTER_MARGIN:
            n = int((horizon - s.fed_until) * 16000)
            s.transcriber.insert_audio_chunk(np.zeros(n, dtype=np.float32), s.fed_until)
            s.fed_until = s.transcriber.end_time or horizon

    def _emit(self, events: list[Caption]) -> None:
        for event in events:
            self.on_caption(event)

    # --- the revision thread ---------------------------------------------------------

    def _on_final(self, final: Caption, heard: Heard) -> None:
        if not self._revision_failed:  # else nobody would ever take (and free) the audio
            self._finals.put((final, heard))

    def _revise(self, reviser: Reviser) -> None:
        """Passes whenever one is due, one at a time; the rest once the speakers' threads are done.

        Its own thread: a pass hears up to 28 s and takes seconds, which would
        hold a speaker's interims and finals back on theirs. At a lower
        priority (:data:`REVISE_NICE`; threads it starts inherit it).
        """
        _lower_priority()
        try:
            while not self._finished.wait(REVISE_TICK):
                self._take_finals(reviser)
                speakers = [s.transcriber for s in list(self._speakers.values())]
                if reviser.due(self._heard_until(speakers), talking=any(t.talking for t in speakers)):
                    self._settle(self._pass(reviser))
            self._take_finals(reviser)
            while reviser.pending:
                self._settle(self._pass(reviser))
        except Exception:  # a failed pass must not take the room's captions down: its finals stay
            self._revision_failed = True
            log.exception("revision pass failed; the finals stay as they are")

    def _heard_until(self, speakers: list[StreamingTranscriber]) -> float:
        """Room time up to which every speaker's audio has been heard: a pause is silence heard, not audio unread.

        With the room clock instead, a speaker's thread running two seconds
        behind (a loaded machine) made the 1.2 s between two turns a 3 s
        pause, and a pass settled the last utterance alone.
        """
        heard = [t.end_time for t in speakers if t.end_time is not None]
        return min(heard) if heard else self.room_now()

    def _pass(self, reviser: Reviser) -> list[Caption]:
        """One revision pass, its CPU logged and charged to the speakers it settles."""
        ticket = self.meter.begin()
        try:
            events = reviser.revise()
        finally:
            cpu = self.meter.end(ticket)
            self.revision.add(cpu)
        done = reviser.last
        log.info(
            "revision pass %d: %.1f s of utterances heard, %.1f s settled, %.2f CPU-s",
            reviser.passes,
            done.heard,
            sum(done.settled.values()),
            cpu,
        )
        for speaker, share in done.shares().items():
            s = self._speakers.get(speaker)
            if s is not None:
                s.transcriber.charge(cpu * share)
        return events

    def _take_finals(self, reviser: Reviser) -> None:
        while True:
            try:
                reviser.add(*self._finals.get_nowait())
            except queue.Empty:
                return

    def _settle(self, events: list[Caption]) -> None:
        for event in events:
            # A seq of its own, above its final's: readers that keep the highest seq of an
            # utterance (the live page) take it, and the stream never repeats an event's.
            s = self._speakers.get(event.speaker)
            self.on_caption(event if s is None else replace(event, seq=s.transcriber.next_seq()))


def _lower_priority() -> None:
    """This thread (and the threads it starts from now on) :data:`REVISE_NICE` nicer; Linux's nice is per thread."""
    me = threading.get_native_id()
    with contextlib.suppress(OSError):  # never fatal: only the captions' pace depends on it
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + REVISE_NICE))


def _revision_model(env: Environment) -> WhisperModel:
    """The revision passes' model (``WHISPER_MODEL``): one thread, loaded :data:`REVISE_NICE` nicer.

    Its computing thread is started as it loads and inherits the loading
    thread's priority, so it is loaded on a thread of its own. One CPU thread
    (a pass costs the same CPU on one or two, only later): the other core is
    left to the speakers' passes. Loaded once per process; a machine whose
    final passes also run on one thread of the same model shares their
    instance, at their priority.
    """
    s = env.settings
    with ThreadPoolExecutor(1, thread_name_prefix="revision-model", initializer=_lower_priority) as loader:
        return loader.submit(
            load_model, s.whisper_model, device=s.whisper_device, compute_type=s.whisper_compute_type, cpu_threads=1
        ).result()


class RoomAgent:
    """The agent's connection to one room, from join to the room's end."""

    def __init__(
        self,
        *,
        settings: Settings,
        space_id: str,
        rtc_url: str,
        model: WhisperModel,
        final_model: WhisperModel | None = None,
        revise_model: WhisperModel | None = None,
        catalog: Catalog | None = None,
        blobs: BlobStore | None = None,
        language: str = "en",
    ) -> None:
        self.settings = settings
        self._own_catalog = catalog is None
        self.catalog = catalog if catalog is not None else open_catalog(settings)
        self.space_id = space_id
        token = tokens.issue(
            settings.secret_key,
            space_id=space_id,
            role=tokens.Role.AGENT,
            identity=AGENT_IDENTITY,
            ttl=settings.live_job_timeout,
        )
        self.client = SpaceClient(rtc_url, token, decode=False, on_packet=self._on_packet)
        self.language = language
        """What the live captions are transcribed in (their search rows are analysed in it)."""
        self.captions = CaptionMaker(
            model=model,
            final_model=final_model,
            on_caption=self._on_caption,
            room_now=self.room_now,
            options=StreamingOptions(final_context=settings.live_final_context).in_language(language),
            reviser=self._reviser(revise_model),
        )
        self.blobs = blobs if blobs is not None else open_blob_store(settings)
        self.hls: LiveHls | None = None
        """The room as HLS (once joined, when ``live_hls`` is on): fed the decoded audio and the captions."""
        self._streams: dict[int, OpusStream] = {}
        self._clock0 = 0.0
        """Wall-clock time of room-clock zero, from the welcome."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[Caption | None] = asyncio.Queue()
        self._to_index: asyncio.Queue[Caption | None] = asyncio.Queue()
        """Final captions for the catalog, written apart: a slow write never holds the next caption back."""
        self._live_turns: dict[tuple[str, int], Turn] = {}
        """Each utterance's live turn until settled, by speaker and utterance: what its settled caption replaces."""
        self.sent = 0

    def room_now(self) -> float:
        return time.time() - self._clock0

    def _reviser(self, model: WhisperModel | None) -> Reviser | None:
        """The revision pass ``live_revise`` asks for, on ``model`` (None, or the setting 0: none)."""
        every = self.settings.live_revise
        if model is None or every <= 0:
            return None
        options = RevisionOptions(every=every)
        return Reviser(model, options=replace(options, whisper=replace(options.whisper, language=self.language)))

    async def run(self) -> None:
        """Join, caption until the room ends, then send the last finals and the stream's end."""
        self._loop = asyncio.get_running_loop()
        await self.client.connect()
        if self.client.welcome is None:
            raise RuntimeError(f"the SFU refused the agent: {self.client.errors}")
        self._clock0 = time.time() - float(self.client.welcome["room_time"])
        log.info("agent joined %s", self.space_id, extra={"space_id": self.space_id})
        self.captions.start()
        if self.settings.live_hls:
            self.hls = LiveHls(
                self.blobs,
                self.space_id,
                self.room_now,
                self._clock0,
                HlsOptions(segment_seconds=self.settings.hls_segment_seconds, language=self.language),
            )
            self.hls.start()
        sender = asyncio.create_task(self._send_all())
        indexer = asyncio.create_task(self._index_all())
        try:
            await self.client.closed.wait()
        finally:
            ended_at = self.room_now()
            await asyncio.to_thread(self.captions.stop)
            if self.hls is not None:
                # After the captions: their last finals go into the subtitles too.
                await asyncio.to_thread(self.hls.stop, ended_at)
            self._outbox.put_nowait(None)
            await sender
            self._to_index.put_nowait(None)
            await indexer
            await self.client.close()
            if self._own_catalog:
                self.catalog.close()
        log.info("agent left %s: %d caption events", self.space_id, self.sent, extra={"space_id": self.space_id})

    # --- media in (event loop) ---------------------------------------------------------

    def _on_packet(self, slot: int, packet: object, wall: float) -> None:
        speaker = self._publisher(slot)
        if speaker is None:
            return
        stream = self._streams.setdefault(slot, OpusStream())
        decoded = stream.push(packet.payload, packet.timestamp, wall - self._clock0)  # type: ignore[attr-defined]
        if decoded is not None:
            self.captions.audio(speaker, *decoded)
            if self.hls is not None:
                self.hls.audio(speaker, *decoded)

    def _publisher(self, slot: int) -> str | None:
        for s in self.client.state.get("speakers", ()):
            if s.get("slot") == slot and not s.get("muted"):
                return str(s["identity"])
        return None

    # --- captions out ----------------------------------------------------------------

    def _on_caption(self, caption: Caption) -> None:
        if self.hls is not None:
            self.hls.caption(caption)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._outbox.put_nowait, caption)

    async def _send_all(self) -> None:
        redis = Redis.from_url(self.settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
        key = live_captions.stream_key(self.settings.queue_name, self.space_id)
        try:
            while (caption := await self._outbox.get()) is not None:
                if not self.client.closed.is_set():
                    await self.client.send({"type": "caption", **caption.to_dict()})
                await self._store(redis, key, caption)
                if caption.final and caption.words:
                    self._to_index.put_nowait(caption)
                self.sent += 1
            await self._store(redis, key, None)
        finally:
            await redis.aclose()

    async def _index_all(self) -> None:
        while (caption := await self._to_index.get()) is not None:
            await asyncio.to_thread(self._index, caption)

    def _index(self, caption: Caption) -> None:
        turn = Turn(caption.speaker, caption.words, language=self.language)
        key = (caption.speaker, caption.utterance)
        try:
            if caption.settled:
                # In place of the final's turn: search never shows a moment twice.
                self.catalog.replace_live_turn(self.space_id, self._live_turns.pop(key, None), turn)
            else:
                self.catalog.add_live_turns(self.space_id, [turn])
                if self.captions.reviser is not None:
                    self._live_turns[key] = turn
        except Exception:  # whatever the catalog's driver raises: captions go on regardless
            # Only search while live misses it; the pipeline's transcript will have it.
            log.warning("live turn of %s not indexed: catalog unreachable", self.space_id, exc_info=True)

    async def _store(self, redis: Redis, key: str, caption: Caption | None) -> None:
        try:
            if caption is None:
                await live_captions.publish_end(redis, key)
            else:
                await live_captions.publish(redis, key, caption)
        except RedisError:
            # The room goes on without Redis; only the SSE stream misses it.
            log.warning("caption of %s not stored: Redis unreachable", self.space_id)


def live_room(space_id: str, rtc_url: str) -> int:
    """rq job (``live`` queue): caption a live space until it ends; returns the caption events sent.

    ``rtc_url`` is the signaling socket of the node holding the room (the
    client follows a ``moved`` if the room went elsewhere).
    """
    env = environment()
    # Live captions follow the language the host set. With ``auto`` they stay
    # English: one utterance is too little to detect a language from (the
    # pipeline detects each speaker's from all their speech afterwards).
    try:
        language = env.catalog.get_space(space_id).language
    except NotFound:
        language = AUTO
    # Interim text on a fast model, final text on an accurate one (SPACES_LIVE_MODEL, SPACES_LIVE_FINAL_MODEL).
    name, final_name = env.settings.live_model_for(language), env.settings.live_final_model_for(language)
    model = env.model(passes=LIVE_PASSES, name=name)
    # Final passes on all the agent's threads: speakers rarely end utterances at the same
    # moment, and the sooner the one pass ends, the sooner its caption goes out.
    final_model = model if model_label(final_name) == model_label(name) else env.model(name=final_name)
    # The revision pass decodes with the pipeline's model (WHISPER_MODEL, SPACES_LIVE_REVISE), an
    # instance of its own: not the interim passes', whose slots a pass of seconds would hold.
    revise_model = _revision_model(env) if env.settings.live_revise > 0 else None
    agent = RoomAgent(
        settings=env.settings,
        space_id=space_id,
        rtc_url=rtc_url,
        model=model,
        final_model=final_model,
        revise_model=revise_model,
        catalog=env.catalog,
        blobs=env.blobs,
        language=language
        if language != AUTO and all(speaks_language(m) for m in (model, final_model, revise_model) if m is not None)
        else "en",
    )
    asyncio.run(agent.run())
    return agent.sent
