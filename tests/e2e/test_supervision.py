"""``spaces up`` keeps its stack running: a worker or the SFU killed is started again."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.speech import VOICES, Utterance, build_space
from tests.support.services import wait_for_port
from tests.support.stack import Stack

pytestmark = pytest.mark.slow


def children(pid: int) -> dict[int, str]:
    """Child pid -> command line, of the ``spaces up`` process."""
    out: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except FileNotFoundError:  # exited meanwhile
                continue
            out[int(child)] = cmdline
    return out


def role(cmdline: str) -> str:
    if cmdline.rstrip().endswith(" worker"):
        return "worker"
    if cmdline.rstrip().endswith("-m ingest"):
        return "sfu"
    if cmdline.rstrip().endswith(" api"):
        return "api"
    return "other"


def by_role(stack: Stack) -> dict[str, set[int]]:
    roles: dict[str, set[int]] = {}
    for pid, cmdline in children(stack.proc.pid).items():
        roles.setdefault(role(cmdline), set()).add(pid)
    return roles


def test_killed_worker_and_sfu_are_started_again(stack: Stack, tmp_path: Path) -> None:
    before = by_role(stack)
    cpus = len(os.sched_getaffinity(0))
    assert len(before["worker"]) == cpus  # one per CPU by default
    assert len(before["sfu"]) == cpus and len(before["api"]) == 1  # one SFU node per CPU too

    killed_worker = min(before["worker"])
    killed_sfu = min(before["sfu"])
    os.kill(killed_worker, signal.SIGKILL)
    os.kill(killed_sfu, signal.SIGKILL)

    deadline = time.monotonic() + 20
    while True:
        now = by_role(stack)
        # The killed ones gone (a moment after the signal they may still be listed), and replaced.
        replaced = killed_worker not in now.get("worker", ()) and killed_sfu not in now.get("sfu", ())
        if replaced and len(now.get("worker", ())) == len(before["worker"]) and len(now.get("sfu", ())) == cpus:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    assert killed_worker not in now["worker"] and killed_sfu not in now["sfu"]
    assert stack.proc.poll() is None
    wait_for_port(int(stack.env["SPACES_SFU_PORT"]), timeout=30)
    # The restarted node took its id back at once (its spool lock proves the old process gone).
    deadline = time.monotonic() + 30
    while not (nodes := stack.get("/nodes").json()) or len(nodes) != cpus or not all(n["alive"] for n in nodes):
        assert time.monotonic() < deadline, nodes
        time.sleep(0.2)

    # The restarted stack does the whole job.
    space = build_space(
        [Utterance("alice", 0.5, "Please remember to bring your notebook to the meeting tomorrow.")],
        {"alice": VOICES[0]},
        duration=6.0,
        out_dir=tmp_path,
    )
    done = stack.spaces("import", "--title", "After the crash", f"alice={space['alice']}")
    assert done.returncode == 0, done.stderr
    space_id = done.stdout.strip().splitlines()[-1]
    transcript = stack.get(f"/spaces/{space_id}/transcript").json()
    said = {w["text"].strip(".,").lower() for turn in transcript["turns"] for w in turn["words"]}
    assert {"notebook", "meeting"} <= said
