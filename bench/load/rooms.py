"""Live rooms through the API, and the client processes that join them."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import readline
from bench.load.stack import Stack

PYTHON = sys.executable


@dataclass
class Room:
    space_id: str
    rtc_url: str
    speakers: list[dict[str, Any]]
    listeners: list[dict[str, Any]]


def create_rooms(stack: Stack, rooms: int, listeners: int, audio: tuple[Path, Path]) -> list[Room]:
    """Spaces and join tokens through the API, as the live page gets them."""
    import httpx

    out = []
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        for r in range(rooms):
            created = http.post("/spaces", json={"title": f"Load room {r}", "host": f"host{r}"})
            created.raise_for_status()
            info = created.json()
            space_id, url = info["space_id"], info["rtc_url"]
            auth = {"Authorization": f"Bearer {info['token']}"}

            def token(role: str, identity: str, headers: dict[str, str], space_id: str = space_id) -> str:
                got = http.post(f"/spaces/{space_id}/tokens", json={"role": role, "identity": identity},
                                headers=headers)  # fmt: skip
                got.raise_for_status()
                return str(got.json()["token"])

            speakers = [
                {"identity": f"host{r}", "url": url, "token": info["token"], "host": True, "expect": 1,
                 "audio": str(audio[0])},
                {"identity": f"guest{r}", "url": url, "token": token("speaker", f"guest{r}", auth), "host": False,
                 "expect": 1, "audio": str(audio[1])},
            ]  # fmt: skip
            members = [
                {"identity": f"l{r}-{i}", "url": url, "token": token("listener", f"l{r}-{i}", {}), "host": False,
                 "expect": 2, "audio": None}
                for i in range(listeners)
            ]  # fmt: skip
            out.append(Room(space_id, url, speakers, members))
    return out


def chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


def spawn_clients(stack: Stack, name: str, peers: list[dict[str, Any]]) -> subprocess.Popen[str]:
    spec = stack.work / f"{name}.json"
    spec.write_text(json.dumps({"peers": peers}))
    return stack.spawn(name, [PYTHON, "-m", "bench.load", "clients", "--spec", str(spec)], stdin=True)


def tell(proc: subprocess.Popen[str], command: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()


def ask(proc: subprocess.Popen[str], command: str, timeout: float) -> dict[str, Any]:
    tell(proc, command)
    answer: dict[str, Any] = json.loads(readline(proc, timeout))
    return answer


def sfu_stats(stack: Stack) -> dict[str, Any]:
    import httpx

    operator = {"Authorization": f"Bearer {stack.env['SPACES_OPERATOR_TOKEN']}"}
    rooms: list[dict[str, Any]] = []
    for url in stack.sfu_urls.values():  # every node's rooms, as one /stats would list them
        rooms += httpx.get(f"{url}/stats", headers=operator, timeout=10).json()["rooms"]
    return {"rooms": rooms}
