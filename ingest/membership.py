"""Who holds which name in a room: a name belongs to the token that first used it.

Anyone may get a listener token for a public space, so a name alone proves
nothing. The room binds each name (its ``names.name_key``) to the id of the
token that first joined with it, and remembers that holder's *current* role
(a promoted listener is a speaker). Joining again with the same token is a
reconnect: the holder gets its name and current role back, even after a
rename. Another token for a held name is refused, unless its role ranks
above the holder's current one (the host's own token, an invited speaker
for a name a listener holds). Removal bans the token and every name its
holder used in the room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.exceptions import BadMessage, IdentityTaken, NameTaken, SpaceEnded
from spaces.names import check_name, name_key
from spaces.tokens import Claims, Role

#: Who may take a name held by another token: a strictly higher role. The room
#: agent's name is its own (no person may use it), and a new agent replaces the last.
RANK = {Role.LISTENER: 0, Role.SPEAKER: 1, Role.HOST: 2, Role.AGENT: 3}


@dataclass
class Holder:
    """The one token a name in the room belongs to."""

    token_id: str
    name: str
    """The name it is in the room under now (a rename changes it)."""
    role: Role
    """Its current role (promotion and demotion change it)."""
    keys: set[str] = field(default_factory=set)
    """Every name key it has held in the room."""


@dataclass(frozen=True)
class Admission:
    """What a join would do, decided before anything changes."""

    holder: Holder
    replaces: str | None
    """The name of a connection in the room this join replaces (reconnect or takeover)."""
    taken_from: Holder | None = None


class Names:
    def __init__(self) -> None:
        self._by_key: dict[str, Holder] = {}
        self._by_token: dict[str, Holder] = {}
        self._banned_keys: set[str] = set()
        self._banned_tokens: set[str] = set()

    def resolve(self, claims: Claims) -> Admission:
        """Decide a join; raise ``SpaceEnded`` (removed) or ``IdentityTaken``. Changes nothing."""
        key = name_key(claims.identity)
        if claims.token_id in self._banned_tokens or key in self._banned_keys:
            raise SpaceEnded("you were removed from this space by the host")
        holder = self._by_token.get(claims.token_id)
        if holder is not None:
            # The same token again: a reconnect, as what the holder is now.
            return Admission(holder, replaces=holder.name)
        current = self._by_key.get(key)
        replaces_agent = current is not None and claims.role is Role.AGENT is current.role
        if current is not None and RANK[claims.role] <= RANK[current.role] and not replaces_agent:
            raise IdentityTaken(f"{claims.identity!r} is already taken in this space")
        new = Holder(token_id=claims.token_id, name=claims.identity, role=claims.role, keys={key})
        return Admission(new, replaces=current.name if current else None, taken_from=current)

    def bind(self, admission: Admission) -> None:
        holder = admission.holder
        if admission.taken_from is not None:
            self._by_token.pop(admission.taken_from.token_id, None)
            admission.taken_from.keys -= holder.keys
        for key in holder.keys:
            self._by_key[key] = holder
        self._by_token[holder.token_id] = holder

    def available(self, name: str, token_id: str) -> bool:
        """Whether the holder of ``token_id`` may take ``name`` (free, or already its own)."""
        current = self._by_key.get(name_key(name))
        return current is None or current.token_id == token_id

    async def reserve(self, holder: Holder, raw: str, *, claim: Callable[[str, str], str]) -> str:
        """Check a name ``holder`` asks for (a raised hand's, a rename) and bind it to its token.

        ``claim(key, token_id)`` binds it in the catalog (blocking; run in a
        thread), which knows the names the API handed to people not in the
        room yet. Raises ``BadMessage`` (invalid) or ``NameTaken``.
        """
        try:
            name = check_name(raw)
        except ValueError as e:
            raise BadMessage(str(e)) from e
        if not self.available(name, holder.token_id):
            raise NameTaken(f"{name!r} is already taken in this space")
        if await asyncio.to_thread(claim, name_key(name), holder.token_id) != holder.token_id:
            raise NameTaken(f"{name!r} is already taken in this space")
        return name

    def rename(self, holder: Holder, name: str) -> None:
        key = name_key(name)
        holder.keys.add(key)
        holder.name = name
        self._by_key[key] = holder

    def ban(self, holder: Holder) -> None:
        self._banned_tokens.add(holder.token_id)
        self._banned_keys.update(holder.keys)
