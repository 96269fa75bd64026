"""What a live pass is charged: the model's threads' CPU, shared among the passes in flight (issue 10's CPU bound)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from faster_whisper import WhisperModel

from tests.speech import VOICES, synthesize
from tests.support.clock import ManualClock
from transcribe.audio import SAMPLE_RATE
from transcribe.pass_meter import NativeCpu, PassMeter
from transcribe.streaming import StreamingOptions, StreamingTranscriber

SENTENCE = "I read a wonderful book about the history of the ocean and the ships that crossed it."


def test_a_pass_is_charged_its_share_of_the_model_threads_cpu_while_it_ran() -> None:
    native, own = ManualClock(), ManualClock()
    meter = PassMeter(native, own)
    native.now = 5.0  # before any pass: nobody's
    a = meter.begin()
    native.now += 0.2  # a alone
    b = meter.begin()
    native.now += 0.4  # a and b side by side
    own.now += 0.05  # the calling thread's own work (both passes share the fake thread clock here)
    assert meter.end(a) == pytest.approx(0.2 + 0.2 + 0.05)
    native.now += 0.1  # b alone
    assert meter.end(b) == pytest.approx(0.2 + 0.1 + 0.05)
    native.now += 3.0  # between passes: nobody's
    c = meter.begin()
    assert meter.end(c) == 0.0


def test_native_cpu_counts_the_model_threads_and_not_python_s(model: WhisperModel) -> None:
    """A real pass: what the meter charges is the process's CPU over it, not the few per cent its own thread sees."""
    audio = synthesize(SENTENCE, VOICES[0]).samples.astype(np.float32)
    meter = PassMeter(NativeCpu())
    out: dict[str, float] = {}

    def one_pass() -> None:
        thread, process, ticket = time.thread_time(), time.process_time(), meter.begin()
        list(model.transcribe(audio, beam_size=1, without_timestamps=True)[0])
        out["charged"] = meter.end(ticket)
        out["process"] = time.process_time() - process
        out["thread"] = time.thread_time() - thread

    runner = threading.Thread(target=one_pass)
    runner.start()
    runner.join()
    # Only this process's threads: other load on the machine changes none of the three figures.
    assert 0.8 * out["process"] <= out["charged"] <= out["process"] + 0.01, out


def _pass_starts(model: WhisperModel, audio: np.ndarray, *, charge: float, elsewhere: float = 0.0) -> list[float]:
    """Where in ``audio`` each pass started, every pass charged ``charge`` CPU-s, at ``max_load`` 0.5.

    ``elsewhere``: CPU-s of passes made elsewhere for the speaker (:meth:`StreamingTranscriber.charge`), first.
    """
    native = ManualClock()
    starts: list[float] = []

    class Charging(PassMeter):
        def begin(self) -> tuple[int, float]:
            ticket = super().begin()
            native.now += charge  # the model's threads' CPU, spent inside the pass
            return ticket

    # The calling thread's own CPU (real, what a slow or loaded machine makes larger) is none here:
    # each pass costs exactly ``charge``, so the gaps are the pacing's alone.
    meter = Charging(lambda: native.now, ManualClock())
    live = StreamingTranscriber(model, speaker="alice", options=StreamingOptions(max_load=0.5), meter=meter)
    live.charge(elsewhere)
    for i in range(0, len(audio), 320):
        live.insert_audio_chunk(audio[i : i + 320], i / SAMPLE_RATE)
        before = native.now
        live.process_iter()
        if native.now != before:
            starts.append((i + 320) / SAMPLE_RATE)
    return starts


def _gaps(starts: list[float]) -> list[float]:
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


def test_interim_passes_wait_for_their_cost_in_audio_at_max_load(model: WhisperModel) -> None:
    """Each pass charged 1 CPU-s: at ``max_load`` 0.5 the next waits for 2 s more of the utterance."""
    speech = synthesize(SENTENCE, VOICES[0]).samples.astype(np.float32)
    starts = _pass_starts(model, np.concatenate([np.zeros(SAMPLE_RATE, dtype=np.float32), speech]), charge=1.0)
    assert len(starts) >= 2, starts  # a 5 s sentence: passes at 0.4 s without the charge
    assert min(_gaps(starts)) >= 2.0 - 0.05, starts


def test_interim_passes_share_max_load_with_the_finals_evenly(model: WhisperModel) -> None:
    """After a final, interim passes are paid off at what the finals leave of ``max_load``, all through.

    Not at all of it once the final's cost is paid: that held the first
    seconds of every utterance without a caption, then ran passes at
    full pace.
    """
    said = synthesize(SENTENCE, VOICES[0])
    speech, silence = said.samples.astype(np.float32), np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    starts = _pass_starts(model, np.concatenate([silence, speech, silence, speech, silence]), charge=0.5)
    # Interim passes only: the final's starts in the silence after each sentence.
    first = [t for t in starts if 2.0 < t <= 2.0 + said.duration]
    then = [t for t in starts if 4.0 + said.duration < t <= 4.0 + 2 * said.duration]
    assert len(first) >= 3 and len(then) >= 3, starts
    assert min(_gaps(first)) >= 1.0 - 0.05, starts  # no final yet: 0.5 CPU-s at 0.5 core
    # One final of 0.5 CPU-s over the speaker's utterances so far (one sentence and its pads, then
    # two): the interims get 0.5 - 0.5 / that, so 0.5 CPU-s take longer than a second to pay, all through.
    slowest, fastest = 0.5 / (0.5 - 0.5 / said.duration), 0.5 / (0.5 - 0.5 / (2 * said.duration + 2.0))
    assert fastest - 0.05 <= min(_gaps(then)) and max(_gaps(then)) <= slowest + 0.05, starts


def test_a_pass_made_elsewhere_for_the_speaker_is_paid_from_max_load_like_a_final(model: WhisperModel) -> None:
    """1 CPU-s charged (a revision pass's share): the interims get nothing until 2 s of talk pay it at 0.5 core."""
    speech = synthesize(SENTENCE, VOICES[0]).samples.astype(np.float32)
    audio = np.concatenate([np.zeros(SAMPLE_RATE, dtype=np.float32), speech])
    free = _pass_starts(model, audio, charge=0.2)
    charged = _pass_starts(model, audio, charge=0.2, elsewhere=1.0)
    assert max(_gaps(free)) <= 0.4 + 0.1, free  # 0.2 CPU-s at 0.5 core: paid in the 0.4 s of the next interval
    # The first pass is free (nothing owed yet); the next waits for the charge: at 0.5 - 1 / t core
    # after t seconds of talk, nothing before 2 s, and its 0.2 CPU-s are paid about 0.9 s after that.
    assert len(charged) >= 2 and charged[1] - charged[0] >= 1.5, charged
