"""The store contract: every test runs unchanged against the embedded store and a real redis-server."""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.core.errors import BadRequest, Conflict, NotFound, Unavailable
from gateway.core.ids import ChallengeId, FactorId, UserId
from gateway.core.models import Factor, FactorKind, Role
from gateway.core.ports import Store
from tests.contract.harness import LONG_TTL_S, SHORT_TTL_S, Harness
from tests.contract.records import T0, a_login, a_passkey, a_totp, a_user, an_event

WINDOW_S = 1.0  # a counter window long enough for two steps of 0.6 s to straddle it


# -- users ---------------------------------------------------------------------------------------


async def test_added_user_is_found_by_id(store: Store) -> None:
    user = a_user(role=Role.ADMIN, password_hash="$argon2id$v=19$...")
    await store.add_user(user)
    assert await store.get_user(user.id) == user


async def test_added_user_is_found_by_name(store: Store) -> None:
    user = a_user()
    await store.add_user(user)
    assert await store.user_by_name("ada") == user


async def test_unknown_user_is_none_by_id_and_by_name(store: Store) -> None:
    assert await store.get_user(UserId("usr_nobody")) is None
    assert await store.user_by_name("nobody") is None


async def test_list_users_returns_every_user_sorted_by_name(store: Store) -> None:
    for name in ("grace", "ada", "linus"):
        await store.add_user(a_user(name))
    assert [u.name for u in await store.list_users()] == ["ada", "grace", "linus"]


async def test_update_user_replaces_the_record(store: Store) -> None:
    user = a_user()
    await store.add_user(user)
    disabled = user.model_copy(update={"disabled": True, "role": Role.REVIEWER})
    await store.update_user(disabled)
    assert await store.get_user(user.id) == disabled


async def test_update_user_rename_moves_the_name_index(store: Store) -> None:
    user = a_user()
    await store.add_user(user)
    renamed = user.model_copy(update={"name": "ada.l"})
    await store.update_user(renamed)
    assert await store.user_by_name("ada.l") == renamed
    assert await store.user_by_name("ada") is None


async def test_update_user_rename_to_a_taken_name_conflicts_and_changes_nothing(store: Store) -> None:
    ada, grace = a_user("ada"), a_user("grace")
    await store.add_user(ada)
    await store.add_user(grace)
    with pytest.raises(Conflict):
        await store.update_user(ada.model_copy(update={"name": "grace", "disabled": True}))
    assert await store.get_user(ada.id) == ada
    assert await store.user_by_name("grace") == grace


async def test_update_of_an_unknown_user_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.update_user(a_user())


async def test_duplicate_user_name_conflicts(store: Store) -> None:
    await store.add_user(a_user("ada", "usr_1"))
    with pytest.raises(Conflict):
        await store.add_user(a_user("ada", "usr_2"))
    assert await store.get_user(UserId("usr_2")) is None


async def test_duplicate_user_id_conflicts_without_claiming_the_name(store: Store) -> None:
    await store.add_user(a_user("ada", "usr_1"))
    with pytest.raises(Conflict):
        await store.add_user(a_user("grace", "usr_1"))
    assert await store.user_by_name("grace") is None
    await store.add_user(a_user("grace", "usr_2"))


# -- factors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [FactorKind.PASSKEY, FactorKind.TOTP])
async def test_factor_of_each_kind_round_trips(store: Store, kind: FactorKind) -> None:
    user = a_user()
    factor: Factor = a_passkey(user) if kind is FactorKind.PASSKEY else a_totp(user)
    await store.add_factor(factor)
    got = await store.get_factor(factor.id)
    assert got == factor
    assert type(got) is type(factor)


async def test_factors_of_lists_a_users_factors_oldest_first(store: Store) -> None:
    ada, grace = a_user("ada"), a_user("grace")
    await store.add_factor(a_totp(ada))
    await store.add_factor(a_passkey(ada))
    await store.add_factor(a_passkey(grace, "cred-g", "fac_g"))
    assert [f.id for f in await store.factors_of(ada.id)] == ["fac_pk1", "fac_totp1"]


async def test_factor_by_credential_finds_the_passkey(store: Store) -> None:
    passkey = a_passkey(a_user())
    await store.add_factor(passkey)
    assert await store.factor_by_credential("cred-1") == passkey
    assert await store.factor_by_credential("cred-unknown") is None


async def test_duplicate_credential_conflicts_and_stores_nothing(store: Store) -> None:
    await store.add_factor(a_passkey(a_user("ada")))
    grace = a_user("grace")
    with pytest.raises(Conflict):
        await store.add_factor(a_passkey(grace, "cred-1", "fac_other"))
    assert await store.get_factor(FactorId("fac_other")) is None
    assert await store.factors_of(grace.id) == []


async def test_duplicate_factor_id_conflicts(store: Store) -> None:
    user = a_user()
    await store.add_factor(a_totp(user, "fac_1"))
    with pytest.raises(Conflict):
        await store.add_factor(a_passkey(user, "cred-new", "fac_1"))
    assert await store.factor_by_credential("cred-new") is None


async def test_update_factor_replaces_the_record(store: Store) -> None:
    passkey = a_passkey(a_user())
    await store.add_factor(passkey)
    used = passkey.model_copy(update={"sign_count": 9, "last_used_at": T0 + 60, "name": "work laptop"})
    await store.update_factor(used)
    assert await store.get_factor(passkey.id) == used
    assert await store.factor_by_credential("cred-1") == used


async def test_update_factor_cannot_move_it_to_another_user_or_credential(store: Store) -> None:
    passkey = a_passkey(a_user("ada"))
    await store.add_factor(passkey)
    with pytest.raises(BadRequest):
        await store.update_factor(passkey.model_copy(update={"user_id": UserId("usr_grace")}))
    with pytest.raises(BadRequest):
        await store.update_factor(passkey.model_copy(update={"credential_id": "cred-2"}))
    assert await store.get_factor(passkey.id) == passkey


async def test_update_of_an_unknown_factor_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.update_factor(a_totp(a_user()))


async def test_remove_factor_frees_its_credential(store: Store) -> None:
    user = a_user()
    passkey = a_passkey(user)
    await store.add_factor(passkey)
    await store.remove_factor(passkey.id)
    assert await store.get_factor(passkey.id) is None
    assert await store.factor_by_credential("cred-1") is None
    assert await store.factors_of(user.id) == []
    await store.add_factor(a_passkey(user, "cred-1", "fac_again"))


async def test_remove_of_an_unknown_factor_does_nothing(store: Store) -> None:
    await store.remove_factor(FactorId("fac_nothing"))


async def test_remove_factors_of_removes_every_factor_of_the_user_and_counts_them(store: Store) -> None:
    ada, grace = a_user("ada"), a_user("grace")
    await store.add_factor(a_passkey(ada))
    await store.add_factor(a_totp(ada))
    await store.add_factor(a_passkey(grace, "cred-g", "fac_g"))
    assert await store.remove_factors_of(ada.id) == 2
    assert await store.factors_of(ada.id) == []
    assert await store.factor_by_credential("cred-1") is None
    assert [f.id for f in await store.factors_of(grace.id)] == ["fac_g"]
    assert await store.remove_factors_of(ada.id) == 0


# -- login sessions ------------------------------------------------------------------------------


async def test_put_login_then_get_returns_it(store: Store) -> None:
    login = a_login(a_user())
    await store.put_login(login, LONG_TTL_S)
    assert await store.get_login(login.id) == login


async def test_put_login_again_replaces_the_record(store: Store) -> None:
    login = a_login(a_user())
    await store.put_login(login, LONG_TTL_S)
    seen = login.model_copy(update={"last_seen_at": T0 + 30})
    await store.put_login(seen, LONG_TTL_S)
    assert await store.get_login(login.id) == seen
    assert await store.logins_of(login.user_id) == [seen]


async def test_logins_of_lists_only_that_users_logins(store: Store) -> None:
    ada, grace = a_user("ada"), a_user("grace")
    first, second = a_login(ada, "lgn_1", T0), a_login(ada, "lgn_2", T0 + 5)
    for login in (second, first, a_login(grace, "lgn_g")):
        await store.put_login(login, LONG_TTL_S)
    assert await store.logins_of(ada.id) == [first, second]


async def test_delete_login_removes_it_everywhere(store: Store) -> None:
    login = a_login(a_user())
    await store.put_login(login, LONG_TTL_S)
    await store.delete_login(login.id)
    assert await store.get_login(login.id) is None
    assert await store.logins_of(login.user_id) == []
    await store.delete_login(login.id)


async def test_login_expires_after_its_ttl(harness: Harness, store: Store) -> None:
    login = a_login(a_user())
    await store.put_login(login, SHORT_TTL_S)
    assert await store.get_login(login.id) == login
    await harness.elapse(SHORT_TTL_S)
    assert await store.get_login(login.id) is None
    assert await store.logins_of(login.user_id) == []


async def test_a_short_login_does_not_hide_a_longer_one_of_the_same_user(
    harness: Harness, store: Store
) -> None:
    ada, grace = a_user("ada"), a_user("grace")
    ada_long, ada_short = a_login(ada, "lgn_a_long"), a_login(ada, "lgn_a_short")
    grace_long, grace_short = a_login(grace, "lgn_g_long"), a_login(grace, "lgn_g_short")
    await store.put_login(ada_long, LONG_TTL_S)
    await store.put_login(ada_short, SHORT_TTL_S)
    await store.put_login(grace_short, SHORT_TTL_S)
    await store.put_login(grace_long, LONG_TTL_S)
    await harness.elapse(SHORT_TTL_S)
    assert await store.logins_of(ada.id) == [ada_long]
    assert await store.logins_of(grace.id) == [grace_long]


# -- challenges ----------------------------------------------------------------------------------


async def test_challenge_is_taken_once(store: Store) -> None:
    cid = ChallengeId("chl_1")
    await store.put_challenge(cid, b"\x00payload\xff", LONG_TTL_S)
    assert await store.take_challenge(cid) == b"\x00payload\xff"
    assert await store.take_challenge(cid) is None


async def test_take_of_an_unknown_challenge_is_none(store: Store) -> None:
    assert await store.take_challenge(ChallengeId("chl_never")) is None


async def test_challenge_expires_after_its_ttl(harness: Harness, store: Store) -> None:
    cid = ChallengeId("chl_1")
    await store.put_challenge(cid, b"x", SHORT_TTL_S)
    await harness.elapse(SHORT_TTL_S)
    assert await store.take_challenge(cid) is None


async def test_concurrent_takes_of_one_challenge_let_exactly_one_win(store: Store) -> None:
    cid = ChallengeId("chl_race")
    await store.put_challenge(cid, b"once", LONG_TTL_S)
    taken = await asyncio.gather(*(store.take_challenge(cid) for _ in range(20)))
    assert [t for t in taken if t is not None] == [b"once"]


# -- counters ------------------------------------------------------------------------------------


async def test_incr_counts_from_one(store: Store) -> None:
    assert [await store.incr("fail:ada", LONG_TTL_S) for _ in range(3)] == [1, 2, 3]
    assert await store.get_count("fail:ada") == 3


async def test_get_count_of_an_absent_counter_is_zero(store: Store) -> None:
    assert await store.get_count("fail:nobody") == 0


async def test_reset_clears_the_counter(store: Store) -> None:
    await store.incr("fail:ada", LONG_TTL_S)
    await store.reset("fail:ada")
    assert await store.get_count("fail:ada") == 0
    assert await store.incr("fail:ada", LONG_TTL_S) == 1


async def test_incr_window_runs_from_creation_not_from_the_last_incr(harness: Harness, store: Store) -> None:
    assert await store.incr("fail:ada", WINDOW_S) == 1
    await harness.elapse(0.6 * WINDOW_S)
    assert await store.incr("fail:ada", WINDOW_S) == 2
    await harness.elapse(0.6 * WINDOW_S)
    assert await store.get_count("fail:ada") == 0
    assert await store.incr("fail:ada", WINDOW_S) == 1


async def test_concurrent_incr_hands_out_each_value_once(store: Store) -> None:
    values = await asyncio.gather(*(store.incr("hits", LONG_TTL_S) for _ in range(50)))
    assert sorted(values) == list(range(1, 51))


async def test_raise_floor_on_an_absent_counter_raises_it(store: Store) -> None:
    assert await store.raise_floor("totp:fac_1", -5, LONG_TTL_S) is True
    assert await store.get_count("totp:fac_1") == -5


async def test_raise_floor_with_a_lower_value_refuses(store: Store) -> None:
    await store.raise_floor("totp:fac_1", 100, LONG_TTL_S)
    assert await store.raise_floor("totp:fac_1", 99, LONG_TTL_S) is False
    assert await store.get_count("totp:fac_1") == 100


async def test_raise_floor_with_an_equal_value_refuses(store: Store) -> None:
    await store.raise_floor("totp:fac_1", 100, LONG_TTL_S)
    assert await store.raise_floor("totp:fac_1", 100, LONG_TTL_S) is False


async def test_raise_floor_with_a_higher_value_raises(store: Store) -> None:
    await store.raise_floor("totp:fac_1", 100, LONG_TTL_S)
    assert await store.raise_floor("totp:fac_1", 101, LONG_TTL_S) is True
    assert await store.get_count("totp:fac_1") == 101


async def test_raise_floor_handles_epoch_sized_values(store: Store) -> None:
    lock_until = 1_767_225_600_123
    assert await store.raise_floor("lock:ada", lock_until, LONG_TTL_S) is True
    assert await store.raise_floor("lock:ada", lock_until, LONG_TTL_S) is False
    assert await store.get_count("lock:ada") == lock_until


async def test_raise_floor_after_expiry_accepts_a_lower_value(harness: Harness, store: Store) -> None:
    await store.raise_floor("totp:fac_1", 100, SHORT_TTL_S)
    await harness.elapse(SHORT_TTL_S)
    assert await store.raise_floor("totp:fac_1", 1, LONG_TTL_S) is True


async def test_concurrent_raises_to_one_value_let_exactly_one_win(store: Store) -> None:
    won = await asyncio.gather(*(store.raise_floor("totp:fac_1", 7, LONG_TTL_S) for _ in range(20)))
    assert won.count(True) == 1


async def test_concurrent_raises_end_at_the_highest_value(store: Store) -> None:
    values = list(range(1, 31))
    random.Random(7).shuffle(values)
    won = await asyncio.gather(*(store.raise_floor("totp:fac_1", v, LONG_TTL_S) for v in values))
    assert await store.get_count("totp:fac_1") == 30
    assert won[values.index(30)] is True


async def test_non_positive_ttl_is_refused(store: Store) -> None:
    user = a_user()
    for ttl_s in (0.0, -1.0):
        with pytest.raises(ValueError, match="ttl_s"):
            await store.put_login(a_login(user), ttl_s)
        with pytest.raises(ValueError, match="ttl_s"):
            await store.put_challenge(ChallengeId("chl_1"), b"x", ttl_s)
        with pytest.raises(ValueError, match="ttl_s"):
            await store.incr("c", ttl_s)
        with pytest.raises(ValueError, match="ttl_s"):
            await store.raise_floor("c", 1, ttl_s)


# -- audit ---------------------------------------------------------------------------------------


async def test_append_assigns_increasing_seq_and_keeps_the_event(store: Store) -> None:
    event = an_event("signin.failed", "usr_ada", reason="bad code", attempts=2, locked=False, wait=None)
    stored = [await store.append(event) for _ in range(3)]
    seqs = [e.seq for e in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3 and seqs[0] >= 1
    assert stored[0] == event.model_copy(update={"seq": seqs[0]})
    assert await store.events() == stored


async def test_events_filter_by_subject(store: Store) -> None:
    await store.append(an_event("signin.ok", "usr_ada"))
    await store.append(an_event("signin.ok", "usr_grace"))
    await store.append(an_event("signout", "usr_ada"))
    assert [e.type for e in await store.events(subject="usr_ada")] == ["signin.ok", "signout"]


async def test_events_filter_by_type_prefix(store: Store) -> None:
    for type_ in ("factor.added", "signin.ok", "factor.removed", "factorial"):
        await store.append(an_event(type_))
    assert [e.type for e in await store.events(type_prefix="factor.")] == ["factor.added", "factor.removed"]


async def test_events_page_with_after_seq_and_limit(store: Store) -> None:
    stored = [await store.append(an_event("signin.ok", n=i)) for i in range(5)]
    first = await store.events(limit=2)
    second = await store.events(after_seq=first[-1].seq, limit=2)
    third = await store.events(after_seq=second[-1].seq, limit=2)
    assert [*first, *second, *third] == stored
    assert await store.events(after_seq=stored[-1].seq) == []


async def test_events_filter_finds_matches_far_apart(store: Store) -> None:
    await store.append(an_event("user.added", "usr_ada"))
    for i in range(300):
        await store.append(an_event("signin.ok", "usr_grace", n=i))
    last = await store.append(an_event("user.disabled", "usr_ada"))
    found = await store.events(subject="usr_ada", type_prefix="user.")
    assert [e.type for e in found] == ["user.added", "user.disabled"]
    assert [e.seq for e in await store.events(subject="usr_ada", limit=1, after_seq=found[0].seq)] == [
        last.seq
    ]


async def test_events_with_a_non_positive_limit_are_empty(store: Store) -> None:
    await store.append(an_event("signin.ok"))
    assert await store.events(limit=0) == []


# -- durability and failure ----------------------------------------------------------------------


async def test_reopened_store_keeps_users_factors_and_audit(harness: Harness) -> None:
    user = a_user()
    passkey = a_passkey(user)
    await harness.store.add_user(user)
    await harness.store.add_factor(passkey)
    event = await harness.store.append(an_event("user.added", user.id))
    store = await harness.reopen()
    assert await store.user_by_name("ada") == user
    assert await store.factor_by_credential("cred-1") == passkey
    assert await store.events() == [event]
    assert (await store.append(an_event("factor.added", user.id))).seq > event.seq


async def test_an_unreachable_backend_raises_unavailable(harness: Harness) -> None:
    with pytest.raises(Unavailable):
        store = await harness.unreachable()
        await store.get_user(UserId("usr_ada"))
