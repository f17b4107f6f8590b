"""The link store contract: claim and revoke semantics, run unchanged against both backends."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.errors import Conflict
from gateway.core.ids import LinkId, SessionId, UserId
from gateway.core.ports import Store
from tests.contract.harness import LONG_TTL_S, SHORT_TTL_S, Harness
from tests.contract.records import T0, a_link

ADA, GRACE = UserId("usr_ada"), UserId("usr_grace")


async def test_put_link_then_get_returns_it(store: Store) -> None:
    link = a_link(for_user="usr_ada")
    await store.put_link(link, LONG_TTL_S)
    assert await store.get_link(link.id) == link
    assert await store.get_link(LinkId("lnk_unknown")) is None


async def test_duplicate_link_id_conflicts(store: Store) -> None:
    await store.put_link(a_link(), LONG_TTL_S)
    with pytest.raises(Conflict):
        await store.put_link(a_link(session_id="ses_2"), LONG_TTL_S)
    assert await store.links_of_session(SessionId("ses_2")) == []


async def test_link_record_disappears_after_its_ttl(harness: Harness, store: Store) -> None:
    link = a_link()
    await store.put_link(link, SHORT_TTL_S)
    await harness.elapse(SHORT_TTL_S)
    assert await store.get_link(link.id) is None
    assert await store.links_of_session(link.session_id) == []
    assert await store.claim_link(link.id, ADA, T0) is None


async def test_links_of_session_lists_only_that_sessions_live_links(harness: Harness, store: Store) -> None:
    first, second = a_link("lnk_1"), a_link("lnk_2")
    await store.put_link(first, LONG_TTL_S)
    await store.put_link(second, LONG_TTL_S)
    await store.put_link(a_link("lnk_short"), SHORT_TTL_S)
    await store.put_link(a_link("lnk_other", "ses_2"), LONG_TTL_S)
    await harness.elapse(SHORT_TTL_S)
    assert sorted(await store.links_of_session(SessionId("ses_1")), key=lambda x: x.id) == [first, second]


async def test_claim_redeems_an_open_link_for_the_user(store: Store) -> None:
    link = a_link()
    await store.put_link(link, LONG_TTL_S)
    claimed = await store.claim_link(link.id, ADA, T0 + 5)
    assert claimed == link.model_copy(update={"redeemed_by": ADA, "redeemed_at": T0 + 5})
    assert await store.get_link(link.id) == claimed


async def test_claim_of_a_redeemed_link_fails_even_for_its_redeemer(store: Store) -> None:
    link = a_link()
    await store.put_link(link, LONG_TTL_S)
    first = await store.claim_link(link.id, ADA, T0)
    assert await store.claim_link(link.id, GRACE, T0 + 1) is None
    assert await store.claim_link(link.id, ADA, T0 + 1) is None
    assert await store.get_link(link.id) == first


async def test_claim_at_or_after_the_links_expiry_fails(store: Store) -> None:
    link = a_link(ttl_s=60)
    await store.put_link(link, LONG_TTL_S)
    assert await store.claim_link(link.id, ADA, link.expires_at) is None
    assert await store.get_link(link.id) == link


async def test_claim_of_a_revoked_link_fails(store: Store) -> None:
    link = a_link()
    await store.put_link(link, LONG_TTL_S)
    await store.revoke_link(link.id, "usr_owner", T0)
    assert await store.claim_link(link.id, ADA, T0 + 1) is None


async def test_claim_of_a_link_made_for_another_user_fails(store: Store) -> None:
    link = a_link(for_user="usr_grace")
    await store.put_link(link, LONG_TTL_S)
    assert await store.claim_link(link.id, ADA, T0) is None
    claimed = await store.claim_link(link.id, GRACE, T0)
    assert claimed is not None and claimed.redeemed_by == GRACE


async def test_claim_of_an_unknown_link_is_none(store: Store) -> None:
    assert await store.claim_link(LinkId("lnk_unknown"), ADA, T0) is None


async def test_concurrent_claims_let_exactly_one_win(store: Store) -> None:
    link = a_link()
    await store.put_link(link, LONG_TTL_S)
    users = [UserId(f"usr_{i}") for i in range(20)]
    claims = await asyncio.gather(*(store.claim_link(link.id, u, T0) for u in users))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert await store.get_link(link.id) == winners[0]


async def test_revoke_marks_the_link_revoked(store: Store) -> None:
    link = a_link()
    await store.put_link(link, LONG_TTL_S)
    revoked = await store.revoke_link(link.id, "usr_owner", T0 + 9)
    assert revoked == link.model_copy(update={"revoked_at": T0 + 9, "revoked_by": "usr_owner"})
    assert await store.get_link(link.id) == revoked


async def test_revoke_is_idempotent_and_the_first_revocation_stands(store: Store) -> None:
    link = a_link()
    await store.put_link(link, LONG_TTL_S)
    first = await store.revoke_link(link.id, "usr_owner", T0 + 1)
    assert await store.revoke_link(link.id, "system", T0 + 2) == first


async def test_revoke_of_a_redeemed_link_keeps_its_redemption(store: Store) -> None:
    link = a_link()
    await store.put_link(link, LONG_TTL_S)
    claimed = await store.claim_link(link.id, ADA, T0 + 1)
    revoked = await store.revoke_link(link.id, "usr_owner", T0 + 2)
    assert claimed is not None and revoked is not None
    assert (revoked.redeemed_by, revoked.revoked_at) == (ADA, T0 + 2)


async def test_revoke_of_an_unknown_link_is_none(store: Store) -> None:
    assert await store.revoke_link(LinkId("lnk_unknown"), "usr_owner", T0) is None
