"""The processes that serve ``bench.replay``'s queries: the bench's client, the API, PostgreSQL's backends.

What each ran and waited for a CPU per query (``CpuWait`` columns), and
``--pin``: each on CPUs of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench.common import CpuWait, children, local_ports_to, pin

#: The roles ``Serving.waits`` measures, those of them a run has.
ROLES = ("client", "API", "PostgreSQL")

#: The CPUs this process may run on when the bench starts.
_CPUS = os.sched_getaffinity(0)


@dataclass(frozen=True)
class Serving:
    """A bench run's processes: ``api`` the uvicorn process (None in process), ``pg_url`` None on SQLite.

    ``server``: the one PostgreSQL backend of a search in process, when known.
    """

    api: int | None
    pg_url: str | None
    server: int | None = None

    def _api(self) -> list[int]:
        return [] if self.api is None else [self.api, *children(self.api)]

    def _postgres(self) -> list[int]:
        """The backends serving the API (its connections, by their ports), or the one in process."""
        if self.server is not None:
            return [self.server]
        if self.pg_url is None or self.api is None:
            return []
        port = int(conninfo_to_dict(self.pg_url).get("port") or 5432)
        ports = [p for pid in self._api() for p in local_ports_to(pid, port)]
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", (ports,)).fetchall()
        return [int(r[0]) for r in rows]

    def waits(self) -> CpuWait:
        """From now, what the client (this process), the API and PostgreSQL (those there are) run and wait."""
        roles: dict[str, Callable[[], Iterable[int]]] = {"client": lambda: [os.getpid()]}
        if self.api is not None:
            roles["API"] = self._api
        if self.pg_url is not None or self.server is not None:
            roles["PostgreSQL"] = self._postgres
        return CpuWait(roles)

    def pin(self) -> None:
        """PostgreSQL on the first CPU, the client and the API on the last (two cores: one each side).

        Measured: slower than leaving them to the scheduler (see the README), hence ``--pin`` is off by default.
        """
        first, last = min(_CPUS), max(_CPUS)
        for pid in self._postgres():
            pin(pid, {first})
        for pid in [os.getpid(), *self._api()]:
            pin(pid, {last})


def unpin() -> None:
    """This process back on every CPU (its API and backends end with their run)."""
    pin(os.getpid(), set(_CPUS))
