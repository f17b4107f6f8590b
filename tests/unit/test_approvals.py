"""The approvals service: quorum, self-approval, first deny, timeouts, stale decisions, bound challenges."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from gateway.core.clock import FixedClock
from gateway.core.errors import BadRequest, Conflict, Forbidden, Gone, Unavailable
from gateway.core.ids import SessionId, UserId
from gateway.core.models import AuditEvent, Role, User
from gateway.sessions import approvals as approvals_mod
from gateway.sessions.approval_records import State, action_digest, derive_challenge
from gateway.sessions.approvals import ApprovalService
from gateway.sessions.ports import HeldAction


class FakeAudit:
    def __init__(self) -> None:
        self.stored: list[AuditEvent] = []
        self.failing = False

    async def append(self, event: AuditEvent) -> AuditEvent:
        if self.failing:
            raise OSError("disk full")
        stored = event.model_copy(update={"seq": len(self.stored) + 1})
        self.stored.append(stored)
        return stored

    async def events(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        subject: str | None = None,
        type_prefix: str | None = None,
    ) -> list[AuditEvent]:
        return self.stored[after_seq : after_seq + limit]

    def types(self) -> list[str]:
        return [e.type for e in self.stored]


def user(name: str, *, role: Role = Role.MEMBER, groups: tuple[str, ...] = ()) -> User:
    return User(id=UserId(f"usr_{name}"), name=name, role=role, groups=groups, created_at=0.0)


ALICE, BOB, CAROL, DAVE = user("alice"), user("bob"), user("carol", groups=("sec",)), user("dave")
OWNER = user("owen")


def held(n: int = 1, text: str = "rm -rf build", **changes: Any) -> HeldAction:
    base = HeldAction(
        action_id=f"act_{n}", session_id=SessionId("ses_1"), seq=n, requester_id=ALICE.id,
        requester_name="alice", owner_id=OWNER.id, kind="line", text=text, rule="review-rm",
        reason="deletes files", approver_users=("bob", "alice"), approver_groups=("sec",),
        approver_roles=(), approver_owner=True, quorum=1, allow_self_approval=False,
        timeout_s=120.0, created_at=1_767_225_600.0, policy_version="v1", digest="",
    )  # fmt: skip
    a = replace(base, **changes)
    if "digest" not in changes:
        a = replace(a, digest=action_digest(a.session_id, a.seq, a.requester_id, a.kind, a.text))
    return a


class Decisions:
    """Collects on_decided calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, str]] = []

    def __call__(self, action_id: str, approved: bool, reason: str) -> None:
        self.calls.append((action_id, approved, reason))


def signed_for(challenge: bytes, cred: str = "cred-1") -> Callable[[bytes], Awaitable[str]]:
    """A verify() whose assertion was made over ``challenge`` (as WebAuthn would check)."""

    async def verify(expected: bytes) -> str:
        if expected != challenge:
            raise BadRequest("passkey assertion refused: challenge mismatch", code="webauthn_refused")
        return cred

    return verify


@pytest.fixture
def audit() -> FakeAudit:
    return FakeAudit()


@pytest.fixture
async def svc(audit: FakeAudit, clock: FixedClock) -> AsyncIterator[ApprovalService]:
    yield ApprovalService(audit, clock)


async def approve(svc: ApprovalService, action_id: str, who: User, ok: bool = True, **kw: Any) -> Any:
    challenge = await svc.challenge_for(action_id, who)
    return await svc.decide(action_id, who, ok, signed_for(challenge), **kw)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


# ---- who may approve ------------------------------------------------------------------------


async def test_inbox_lists_only_what_the_approver_may_approve(svc: ApprovalService) -> None:
    svc.hold(held(1), Decisions())
    svc.hold(
        held(2, approver_users=(), approver_groups=(), approver_owner=False, approver_roles=("admin",)),
        Decisions(),
    )
    assert [a.action_id for a in await svc.pending_for(BOB)] == ["act_1"]  # named user
    assert [a.action_id for a in await svc.pending_for(CAROL)] == ["act_1"]  # group
    assert [a.action_id for a in await svc.pending_for(OWNER)] == ["act_1"]  # owner
    assert [a.action_id for a in await svc.pending_for(user("root", role=Role.ADMIN))] == ["act_2"]  # role
    assert await svc.pending_for(DAVE) == []
    with pytest.raises(Forbidden) as exc:
        await svc.challenge_for("act_1", DAVE)
    assert exc.value.code == "approval_not_approver"


async def test_requester_cannot_approve_own_action_unless_policy_allows(svc: ApprovalService) -> None:
    svc.hold(held(1), Decisions())
    assert await svc.pending_for(ALICE) == []
    with pytest.raises(Forbidden) as exc:
        await svc.challenge_for("act_1", ALICE)
    assert exc.value.code == "approval_self" and "you asked for this action" in exc.value.message

    decisions = Decisions()
    svc.hold(held(2, allow_self_approval=True), decisions)
    assert [a.action_id for a in await svc.pending_for(ALICE)] == ["act_2"]
    record = await approve(svc, "act_2", ALICE)
    await settle()
    assert record.state_after is State.APPROVED and decisions.calls == [("act_2", True, "approved by alice")]


async def test_disabled_user_is_no_approver(svc: ApprovalService) -> None:
    svc.hold(held(1), Decisions())
    assert await svc.pending_for(BOB.model_copy(update={"disabled": True})) == []


# ---- quorum and first deny ------------------------------------------------------------------


async def test_quorum_counts_distinct_approvers(svc: ApprovalService, audit: FakeAudit) -> None:
    decisions = Decisions()
    svc.hold(held(1, quorum=2), decisions)
    first = await approve(svc, "act_1", BOB)
    assert first.state_after is State.PENDING and first.approvals == 1
    with pytest.raises(Conflict) as exc:  # the same approver twice does not count twice
        await svc.challenge_for("act_1", BOB)
    assert exc.value.code == "approval_duplicate" and "1 more" in exc.value.message
    await settle()
    assert decisions.calls == []
    second = await approve(svc, "act_1", CAROL)
    await settle()
    assert second.state_after is State.APPROVED and second.approvals == 2
    assert decisions.calls == [("act_1", True, "approved by bob, carol")]
    assert [r.approver_name for r in svc.records()] == ["bob", "carol"]
    view = await svc.status("act_1")
    assert view is not None and view.state is State.APPROVED and view.approved_by == ("bob", "carol")


async def test_first_deny_wins_at_once(svc: ApprovalService) -> None:
    decisions = Decisions()
    svc.hold(held(1, quorum=2), decisions)
    await approve(svc, "act_1", BOB)
    record = await approve(svc, "act_1", CAROL, ok=False)
    await settle()
    assert record.state_after is State.DENIED
    assert decisions.calls == [("act_1", False, "denied by carol")]
    with pytest.raises(Conflict) as exc:
        await approve(svc, "act_1", OWNER)
    assert exc.value.code == "approval_decided" and "denied by carol" in exc.value.message


# ---- stale, expired, cancelled --------------------------------------------------------------


async def test_decided_and_unknown_actions_are_refused(svc: ApprovalService) -> None:
    svc.hold(held(1), Decisions())
    await approve(svc, "act_1", BOB)
    with pytest.raises(Conflict) as exc:
        await approve(svc, "act_1", CAROL)
    assert exc.value.code == "approval_decided" and "already decided: approved by bob" in exc.value.message
    with pytest.raises(Gone) as gone:
        await svc.challenge_for("act_nope", BOB)
    assert gone.value.code == "approval_unknown"


async def test_timeout_denies_on_sweep(svc: ApprovalService, clock: FixedClock, audit: FakeAudit) -> None:
    decisions = Decisions()
    svc.hold(held(1, quorum=2), decisions)
    await approve(svc, "act_1", BOB)
    clock.advance(119)
    await svc.sweep()
    assert decisions.calls == []
    clock.advance(1)
    await svc.sweep()
    await settle()
    assert decisions.calls == [("act_1", False, "timed out after 120 s with 1 of 2 approvals")]
    assert audit.types()[-1] == "approval.timed_out"
    with pytest.raises(Gone) as exc:
        await svc.challenge_for("act_1", CAROL)
    assert exc.value.code == "approval_expired" and "too late" in exc.value.message


async def test_an_expired_action_is_refused_even_before_the_sweep(
    svc: ApprovalService, clock: FixedClock
) -> None:
    decisions = Decisions()
    svc.hold(held(1), decisions)
    challenge = await svc.challenge_for("act_1", BOB)
    clock.advance(121)
    with pytest.raises(Gone) as exc:
        await svc.decide("act_1", BOB, True, signed_for(challenge))
    await settle()
    assert exc.value.code == "approval_expired"
    assert decisions.calls == [("act_1", False, "timed out after 120 s with 0 of 1 approvals")]


async def test_cancel_denies_and_later_decisions_are_gone(svc: ApprovalService, audit: FakeAudit) -> None:
    decisions = Decisions()
    svc.hold(held(1), decisions)
    challenge = await svc.challenge_for("act_1", BOB)
    svc.cancel("act_1", "the session ended")
    assert decisions.calls == []  # never re-entrantly inside cancel()
    await settle()
    assert decisions.calls == [("act_1", False, "the session ended")]
    svc.cancel("act_1", "again")  # idempotent
    with pytest.raises(Gone) as exc:
        await svc.decide("act_1", BOB, True, signed_for(challenge))
    assert exc.value.code == "approval_cancelled"
    await svc.flush()
    denied = audit.stored[-1]
    assert denied.type == "approval.denied" and denied.detail["cancelled"] is True


async def test_cancel_while_verifying_answers_gone(svc: ApprovalService) -> None:
    decisions = Decisions()
    svc.hold(held(1), decisions)
    challenge = await svc.challenge_for("act_1", BOB)

    async def slow_verify(expected: bytes) -> str:
        svc.cancel("act_1", "the requester left")
        return await signed_for(challenge)(expected)

    with pytest.raises(Gone):
        await svc.decide("act_1", BOB, True, slow_verify)
    await settle()
    assert decisions.calls == [("act_1", False, "the requester left")]


# ---- challenges bound to the action ---------------------------------------------------------


async def test_assertion_for_another_actions_challenge_is_refused(svc: ApprovalService) -> None:
    decisions = Decisions()
    svc.hold(held(1), decisions)
    svc.hold(held(2, text="git push --force"), Decisions())
    await svc.challenge_for("act_1", BOB)
    other = await svc.challenge_for("act_2", BOB)
    with pytest.raises(BadRequest):
        await svc.decide("act_1", BOB, True, signed_for(other))
    with pytest.raises(Conflict) as exc:  # the nonce was used up by the failed attempt
        await svc.decide("act_1", BOB, True, signed_for(other))
    assert exc.value.code == "approval_no_challenge"
    await settle()
    assert decisions.calls == []
    assert (await approve(svc, "act_1", BOB)).state_after is State.APPROVED  # a fresh challenge works


async def test_challenge_is_derived_from_the_digest_and_a_fresh_nonce(svc: ApprovalService) -> None:
    svc.hold(held(1), Decisions())
    first = await svc.challenge_for("act_1", BOB)
    second = await svc.challenge_for("act_1", BOB)
    assert first != second and len(second) == 32
    with pytest.raises(BadRequest):  # a newer challenge replaces the older one
        await svc.decide("act_1", BOB, True, signed_for(first))
    second = await svc.challenge_for("act_1", BOB)
    record = await svc.decide("act_1", BOB, True, signed_for(second), assertion={"id": "cred-1"})
    assert (
        record.challenge == derive_challenge(record.digest, bytes.fromhex(record.nonce)).hex() == second.hex()
    )
    assert record.assertion_json == json.dumps({"id": "cred-1"})
    assert record.text == "rm -rf build" and record.credential_id == "cred-1"


async def test_digest_that_does_not_match_the_text_is_denied_at_once(svc: ApprovalService) -> None:
    decisions = Decisions()
    forged = held(1, text="ls")
    svc.hold(replace(forged, text="rm -rf /"), decisions)
    await settle()
    assert decisions.calls == [("act_1", False, "the action's digest does not match its content")]
    assert await svc.pending_for(BOB) == []


async def test_duplicate_action_id_is_denied_without_touching_the_first(svc: ApprovalService) -> None:
    first, second = Decisions(), Decisions()
    svc.hold(held(1), first)
    svc.hold(held(1), second)
    await settle()
    assert first.calls == [] and second.calls[0][1] is False
    assert [a.action_id for a in await svc.pending_for(BOB)] == ["act_1"]


# ---- audit ----------------------------------------------------------------------------------


async def test_request_and_decision_are_audited_without_the_text(
    svc: ApprovalService, audit: FakeAudit
) -> None:
    svc.hold(held(1), Decisions())
    await approve(svc, "act_1", BOB, assertion={"id": "cred-1", "response": {}})
    requested, approved = audit.stored
    assert requested.type == "approval.requested" and requested.actor == ALICE.id
    assert approved.type == "approval.approved" and approved.actor == BOB.id and approved.outcome == "ok"
    d = approved.detail
    assert d["session"] == "ses_1" and d["seq"] == 1 and d["requester"] == ALICE.id
    assert d["rule"] == "review-rm" and d["policy_version"] == "v1" and d["digest"] == held(1).digest
    assert d["credential_id"] == "cred-1" and isinstance(d["assertion_sha256"], str) and d["final"] is True
    assert all("rm -rf" not in str(v) for e in audit.stored for v in e.detail.values())


async def test_an_approval_that_cannot_be_recorded_does_not_count(
    svc: ApprovalService, audit: FakeAudit
) -> None:
    decisions = Decisions()
    svc.hold(held(1), decisions)
    audit.failing = True
    with pytest.raises(Unavailable):
        await approve(svc, "act_1", BOB)
    await settle()
    assert decisions.calls == [] and [a.action_id for a in await svc.pending_for(BOB)] == ["act_1"]
    audit.failing = False
    assert (await approve(svc, "act_1", BOB)).state_after is State.APPROVED
    assert audit.types() == ["approval.requested", "approval.approved"]


# ---- live updates and the run task ----------------------------------------------------------


async def test_subscribers_see_their_changes_and_resync_on_overflow(
    svc: ApprovalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob_q, dave_q, alice_q = svc.subscribe(BOB), svc.subscribe(DAVE), svc.subscribe(ALICE)
    svc.hold(held(1, quorum=2), Decisions())
    await approve(svc, "act_1", BOB)
    await approve(svc, "act_1", CAROL, ok=False)
    assert [bob_q.get_nowait().kind for _ in range(3)] == ["held", "updated", "decided"]
    assert alice_q.qsize() == 3  # the requester follows their own action
    assert dave_q.empty()
    svc.unsubscribe(bob_q)
    monkeypatch.setattr(approvals_mod, "SUBSCRIBER_QUEUE", 2)
    small = svc.subscribe(BOB)
    for n in range(2, 6):
        svc.hold(held(n), Decisions())
    # held 2 and 3 filled it; held 4 emptied it for one resync; held 5 follows the resync
    assert [small.get_nowait().kind for _ in range(small.qsize())] == ["resync", "held"]


async def test_run_times_out_and_stops_cleanly(
    svc: ApprovalService, clock: FixedClock, audit: FakeAudit
) -> None:
    decisions = Decisions()
    queue = svc.subscribe(BOB)
    task = asyncio.create_task(svc.run())
    svc.hold(held(1, timeout_s=5), decisions)
    svc.hold(held(2), decisions)
    clock.advance(6)
    for _ in range(100):
        if decisions.calls:
            break
        await asyncio.sleep(0.05)
    assert decisions.calls == [("act_1", False, "timed out after 5 s with 0 of 1 approvals")]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await settle()
    assert decisions.calls[-1] == ("act_2", False, "the gateway is stopping")
    kinds = []
    while not queue.empty():
        kinds.append(queue.get_nowait().kind)
    assert kinds[-1] == "closed"
    assert audit.types() == ["approval.requested"] * 2 + ["approval.timed_out", "approval.denied"]
    late = Decisions()
    svc.hold(held(3), late)
    await settle()
    assert late.calls == [("act_3", False, "the gateway is stopping")]
