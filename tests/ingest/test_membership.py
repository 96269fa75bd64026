"""Who holds a name in a room (``ingest.membership``), without any network."""

from __future__ import annotations

import asyncio

import pytest

from ingest.exceptions import BadMessage, IdentityTaken, NameTaken, SpaceEnded
from ingest.membership import Holder, Names
from spaces.names import check_name, name_key
from spaces.tokens import Claims, Role


def claims(identity: str, role: Role, token_id: str) -> Claims:
    return Claims(space_id="s", role=role, identity=identity, expires_at=0, token_id=token_id)


def join(names: Names, identity: str, role: Role, token_id: str) -> Holder:
    admission = names.resolve(claims(identity, role, token_id))
    names.bind(admission)
    return admission.holder


def test_a_name_belongs_to_its_first_token_and_its_current_role_counts() -> None:
    names = Names()
    carol = join(names, "carol", Role.LISTENER, "c1")
    # Another listener token, any spelling: refused. The same token: a reconnect, nothing new.
    for other in ("carol", "Carol", " CAROL ", "ｃａｒｏｌ"):
        with pytest.raises(IdentityTaken):
            names.resolve(claims(other, Role.LISTENER, "x"))
    again = names.resolve(claims("carol", Role.LISTENER, "c1"))
    assert again.holder is carol and again.replaces == "carol"
    # Promoted: now even a speaker token for the name is refused (equal to her current role).
    carol.role = Role.SPEAKER
    with pytest.raises(IdentityTaken):
        names.resolve(claims("carol", Role.SPEAKER, "x"))
    # Her own listener token brings her back as what she is now.
    assert names.resolve(claims("carol", Role.LISTENER, "c1")).holder.role is Role.SPEAKER
    # A strictly higher role takes the name over; the old token no longer holds it.
    takeover = names.resolve(claims("carol", Role.HOST, "h"))
    assert takeover.replaces == "carol" and takeover.taken_from is carol
    names.bind(takeover)
    with pytest.raises(IdentityTaken):
        names.resolve(claims("carol", Role.LISTENER, "c1"))


def test_renames_and_bans_cover_every_name_a_holder_used() -> None:
    names = Names()
    guest = join(names, "listener-d0bda1", Role.LISTENER, "g")
    names.rename(guest, "Carol Smith")
    assert names.resolve(claims("listener-d0bda1", Role.LISTENER, "g")).holder.name == "Carol Smith"
    assert not names.available("carol smith", "other") and names.available("carol smith", "g")
    with pytest.raises(IdentityTaken):
        names.resolve(claims("listener-d0bda1", Role.LISTENER, "other"))
    names.ban(guest)
    for identity, token_id in (("listener-d0bda1", "g"), ("Carol Smith", "new"), ("fresh", "g")):
        with pytest.raises(SpaceEnded):
            names.resolve(claims(identity, Role.LISTENER, token_id))
    assert join(names, "fresh", Role.LISTENER, "f").name == "fresh"


def test_reserve_checks_the_name_and_the_catalog() -> None:
    names = Names()
    alice = join(names, "alice", Role.HOST, "a")
    guest = join(names, "guest", Role.LISTENER, "g")
    catalog = {"dan": "someone-else"}

    def claim(key: str, token_id: str) -> str:
        return catalog.setdefault(key, token_id)

    async def scenario() -> None:
        assert await names.reserve(guest, "  Erin ", claim=claim) == "Erin"
        assert catalog["erin"] == "g"
        with pytest.raises(NameTaken):
            await names.reserve(guest, "ALICE", claim=claim)
        with pytest.raises(NameTaken):
            await names.reserve(guest, "Dan", claim=claim)
        for bad in ("", "a\u2028b", "a\x85b", "x" * 65, "\u202eevil"):
            with pytest.raises(BadMessage):
                await names.reserve(guest, bad, claim=claim)
        assert await names.reserve(alice, "alice", claim=claim) == "alice"

    asyncio.run(scenario())


def test_name_keys_and_checks() -> None:
    assert name_key("  Carol   Smith ") == name_key("carol smith") == name_key("ＣＡＲＯＬ SMITH")
    assert check_name(" Ada ") == "Ada"
    with pytest.raises(ValueError, match="line breaks"):
        check_name("A\u2029da")
