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


def test_interim_passes_wait_for_their_cost_in_audio_at_max_load(model: WhisperModel) -> None:
    """Each pass charged 1 CPU-s: at ``max_load`` 0.5 the next waits for 2 s more of the utterance."""
    native = ManualClock()
    starts: list[float] = []

    class Charging(PassMeter):
        def begin(self) -> tuple[int, float]:
            ticket = super().begin()
            native.now += 1.0  # a second of the model's threads' CPU per pass, spent inside it
            return ticket

    live = StreamingTranscriber(
        model, speaker="alice", options=StreamingOptions(max_load=0.5), meter=Charging(lambda: native.now)
    )
    speech = synthesize(SENTENCE, VOICES[0]).samples.astype(np.float32)
    audio = np.concatenate([np.zeros(SAMPLE_RATE, dtype=np.float32), speech])
    for i in range(0, len(audio), 320):
        live.insert_audio_chunk(audio[i : i + 320], i / SAMPLE_RATE)
        before = native.now
        live.process_iter()
        if native.now != before:
            starts.append((i + 320) / SAMPLE_RATE)
    assert len(starts) >= 2, starts  # a 5 s sentence: passes at 0.4 s without the charge
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 2.0 - 0.05, gaps
