"""A worker killed outright (SIGKILL, the OOM killer) takes rq's scheduler with it.

rq forks the scheduler from the worker and reaps it only on a clean stop;
before ``spaces.worker.die_with`` a killed worker's scheduler ran on for
good under init, holding the queue's scheduler lock.
"""

from __future__ import annotations

import os
import signal
import time

from spaces.settings import Settings
from tests.support.workers import Workers, children, work_horses


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _scheduler(worker: int, timeout: float = 60) -> int:
    """The worker's scheduler process: its one child that is not a work-horse."""
    deadline = time.monotonic() + timeout
    while True:
        others = [pid for pid in children(worker) if pid not in work_horses(worker)]
        if others:
            (scheduler,) = others
            return scheduler
        assert time.monotonic() < deadline, f"worker {worker} started no scheduler in {timeout}s"
        time.sleep(0.1)


def test_a_killed_workers_scheduler_ends_with_it(settings: Settings, worker_procs: Workers) -> None:
    worker = worker_procs.start(settings)
    scheduler = _scheduler(worker.pid)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 20
    while _alive(scheduler):
        assert time.monotonic() < deadline, f"scheduler {scheduler} outlived its killed worker"
        time.sleep(0.1)
