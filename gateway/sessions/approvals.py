"""Held actions and their approvers: the ``ApprovalPort`` the broker holds actions with.

Theory of operation
-------------------
The broker calls ``hold(action, on_decided)`` for every action policy sent to review; each
held action is a small state machine, decided exactly once::

              hold ─► PENDING ──(quorum of distinct approvals)──► APPROVED
                         │ ├───(one deny)───────────────────────► DENIED
                         │ ├───(cancel: session ended, left)────► CANCELLED
                         │ └───(deadline passed)────────────────► TIMED_OUT
                         └─ (malformed: digest does not match) ─► DENIED at once

``on_decided(action_id, approved, reason)`` is called once, on the event loop via
``call_soon`` (never re-entrantly inside ``hold``/``cancel``); only APPROVED passes True.

Signing exactly what is approved. ``action.digest`` is ``action_digest(...)``: SHA-256 of the
canonical JSON of (session id, seq, requester id, kind, text). An approver asks
``challenge_for(action, approver)``, which draws a fresh 16-byte nonce for that approver and
action (a second call replaces it) and returns ``SHA-256(digest || nonce)``: the WebAuthn
challenge. ``decide`` takes the nonce out (single use, even when verification fails), and
hands the derived challenge to ``verify`` (the approver's WebAuthn assertion, checked by
``gateway.auth.action_signing``); an assertion signed for another action's challenge, or an
older challenge, fails there. The ``DecisionRecord`` keeps digest, nonce, challenge, credential
id and the assertion JSON, so the record proves who approved exactly what.

Rules. Only approvers policy names (``can_approve``: owner, users, groups, roles; never the
requester unless the rule allows self-approval) see or decide an action. A deny decides at
once; approvals count distinct approvers (a second approval by the same person is refused)
until ``quorum``. An action that is decided, timed out, cancelled or unknown answers
``Conflict`` (decided) or ``Gone`` (the rest) with a message that says which.

Audit and fail-closed. Every request, approval, denial, timeout and cancel is an audit event
(``approval.requested|approved|denied|timed_out``; detail: session, seq, requester, kind,
rule, policy version, digest, approver, credential id, SHA-256 of the assertion; never the
typed text, as for every session event). Events queue in order and ``run()`` writes them;
an approval is written *before* it counts, so a store that cannot record it lets nothing run
(``Unavailable``, the vote is not counted). Denials take effect first and are written after.
``decide`` and the timeout sweep hold one lock, so counts are exact; ``cancel`` (synchronous,
from the broker) may land while a decision awaits: the decision then answers ``Gone``, and
the last ``approval.*`` event of an action is always its outcome.

Tasks. ``run()`` (one task in the gateway's task group) sweeps deadlines (at least every
``TICK_S``) and writes queued audit events; when it ends it denies everything still pending
("the gateway is stopping") and closes subscribers. ``subscribe(user)`` returns a bounded
queue of ``InboxChange`` for that user's actions (may decide, or requested); a full queue is
emptied and given one ``resync`` (read the lists again).

Redis-backed version (several nodes): the per-action state is a hash ``appr:{id}`` (action
JSON, state, reason, votes as approver→record JSON) with a ZSET ``appr:deadlines``; nonces
are keys ``appr:nonce:{id}:{user}`` taken with GETDEL; a vote or a deny is one Lua script
(check state, add the vote, count, set the outcome) so nodes agree on "first decision wins";
any node's sweep claims expired ids by the same script. ``on_decided`` lives on the node
whose broker holds the session: outcomes are published on ``appr:decided`` and that node
calls it; inbox changes are published the same way. The query methods are already async.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.core.clock import Clock
from gateway.core.errors import Conflict, Forbidden, Gone, Unavailable
from gateway.core.ids import UserId
from gateway.core.models import AuditEvent, Role, User
from gateway.core.ports import AuditLog
from gateway.policy import Actor, Approvers, Review, SessionFacts, can_approve
from gateway.sessions.approval_records import (
    ActionView,
    DecisionRecord,
    InboxChange,
    State,
    action_digest,
    derive_challenge,
)
from gateway.sessions.ports import Decided, HeldAction

log = logging.getLogger(__name__)

NONCE_BYTES = 16
TICK_S = 1.0  # the sweep runs at least this often
MAX_PENDING = 10_000  # more held actions at once are denied (fail closed)
MAX_TIMEOUT_S = 24 * 3600.0
RECENT_ACTIONS = 2_000  # decided actions kept for "already decided" answers and the requester's view
RECORDS_MAX = 10_000  # signed decisions kept in memory for export (the audit log keeps them all)
AUDIT_QUEUE_MAX = 10_000
SUBSCRIBER_QUEUE = 256
STOP_FLUSH_S = 2.0

Verify = Callable[[bytes], Awaitable[str]]


@dataclass(slots=True)
class _Entry:
    action: HeldAction
    on_decided: Decided
    deadline: float
    state: State = State.PENDING
    reason: str = ""
    decided_at: float | None = None
    votes: dict[UserId, DecisionRecord] = field(default_factory=dict)
    nonces: dict[UserId, bytes] = field(default_factory=dict)

    def view(self) -> ActionView:
        votes = list(self.votes.values())
        return ActionView(
            action=self.action,
            state=self.state,
            reason=self.reason,
            approved_by=tuple(v.approver_name for v in votes),
            approver_ids=tuple(v.approver_id for v in votes),
            deadline=self.deadline,
            decided_at=self.decided_at,
        )


def _review_of(action: HeldAction) -> Review:
    roles = tuple(Role(r) for r in action.approver_roles if r in Role._value2member_map_)
    return Review(
        rule=action.rule,
        approvers=Approvers(action.approver_owner, action.approver_users, action.approver_groups, roles),
        quorum=action.quorum,
        allow_self_approval=action.allow_self_approval,
        timeout_s=int(action.timeout_s),
        reason=action.reason,
    )


class ApprovalService:
    """Single-node, in-memory approvals (see the module docstring); implements ``ApprovalPort``."""

    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock
        self._pending: dict[str, _Entry] = {}
        self._done: OrderedDict[str, _Entry] = OrderedDict()
        self._records: deque[DecisionRecord] = deque(maxlen=RECORDS_MAX)
        self._events: deque[AuditEvent] = deque()
        self._audit_lock = asyncio.Lock()
        self._decide_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._subscribers: dict[asyncio.Queue[InboxChange], User] = {}
        self._stopped = False

    # ---- the port ------------------------------------------------------------------------

    def hold(self, action: HeldAction, on_decided: Decided) -> None:
        timeout = min(max(float(action.timeout_s), 1.0), MAX_TIMEOUT_S)
        entry = _Entry(action, on_decided, deadline=action.created_at + timeout)
        if action.action_id in self._pending or action.action_id in self._done:
            reason = "a held action with this id exists already"
            log.error("held action %s refused: %s", action.action_id, reason)
            self._emit("approval.denied", "system", "fail", entry, reason=reason, cancelled=False)
            asyncio.get_running_loop().call_soon(self._deliver, on_decided, action.action_id, False, reason)
            return
        problem = self._malformed(action)
        self._emit("approval.requested", action.requester_id, "info", entry)
        if problem is not None:
            log.error("held action %s refused: %s", action.action_id, problem)
            self._finish(entry, State.DENIED, problem, actor="system")
            return
        self._pending[action.action_id] = entry
        self._notify("held", entry)
        self._wake.set()

    def cancel(self, action_id: str, reason: str) -> None:
        entry = self._pending.get(action_id)
        if entry is not None:
            self._finish(entry, State.CANCELLED, reason or "cancelled", actor="system")

    # ---- queries (async: a shared store answers them in the multi-node version) ----------

    def now(self) -> float:
        return self._clock.now()

    def may_approve(self, action: HeldAction, user: User) -> bool:
        """Policy's ``can_approve`` for this action (owner, users, groups, roles; self-approval)."""
        if user.disabled:
            return False
        actor = Actor(UserId(user.id), user.name, user.groups, user.role)
        facts = SessionFacts(id=action.session_id, owner_id=action.owner_id, owner_name="")
        return can_approve(_review_of(action), actor, facts, action.requester_id)

    async def pending_for(self, approver: User) -> list[HeldAction]:
        return [v.action for v in await self.inbox(approver)]

    async def inbox(self, approver: User) -> list[ActionView]:
        """Pending actions ``approver`` may approve, oldest first."""
        entries = [e for e in self._pending.values() if self.may_approve(e.action, approver)]
        return [e.view() for e in sorted(entries, key=lambda e: e.action.created_at)]

    async def requested_by(self, user_id: UserId) -> list[ActionView]:
        """The user's own held actions, pending and recently decided, oldest first."""
        entries = [
            e for e in (*self._pending.values(), *self._done.values()) if e.action.requester_id == user_id
        ]
        return [e.view() for e in sorted(entries, key=lambda e: e.action.created_at)]

    async def status(self, action_id: str) -> ActionView | None:
        entry = self._pending.get(action_id) or self._done.get(action_id)
        return entry.view() if entry is not None else None

    def records(self) -> list[DecisionRecord]:
        """Signed decisions kept in memory (newest last), for export."""
        return list(self._records)

    # ---- deciding ------------------------------------------------------------------------

    async def challenge_for(self, action_id: str, approver: User) -> bytes:
        """A fresh challenge for ``approver`` to sign this action with (replaces an earlier one)."""
        entry = self._decidable(action_id, approver)
        nonce = secrets.token_bytes(NONCE_BYTES)
        entry.nonces[UserId(approver.id)] = nonce
        return derive_challenge(entry.action.digest, nonce)

    async def decide(
        self,
        action_id: str,
        approver: User,
        approve: bool,
        verify: Verify,
        *,
        assertion: Mapping[str, Any] | None = None,
    ) -> DecisionRecord:
        """Count a signed approval or apply a signed denial; see the module docstring for the rules."""
        async with self._decide_lock:
            entry = self._decidable(action_id, approver)
            nonce = entry.nonces.pop(UserId(approver.id), None)
            if nonce is None:
                raise Conflict(
                    "no challenge is waiting for your decision on this action: ask for one first",
                    code="approval_no_challenge",
                )
            challenge = derive_challenge(entry.action.digest, nonce)
            credential_id = await verify(challenge)
            entry = self._decidable(action_id, approver)  # cancelled or expired meanwhile?
            approvals = len(entry.votes) + (1 if approve else 0)
            if not approve:
                after = State.DENIED
            else:
                after = State.APPROVED if approvals >= max(1, entry.action.quorum) else State.PENDING
            raw = json.dumps(assertion, sort_keys=True) if assertion is not None else None
            record = DecisionRecord(
                action_id=action_id, session_id=entry.action.session_id, seq=entry.action.seq,
                requester_id=entry.action.requester_id, kind=entry.action.kind, text=entry.action.text,
                digest=entry.action.digest, rule=entry.action.rule,
                policy_version=entry.action.policy_version, approver_id=UserId(approver.id),
                approver_name=approver.name, approve=approve, credential_id=credential_id,
                nonce=nonce.hex(), challenge=challenge.hex(), assertion_json=raw,
                assertion_sha256=hashlib.sha256(raw.encode()).hexdigest() if raw is not None else None,
                decided_at=self._clock.now(), state_after=after, approvals=approvals,
                quorum=entry.action.quorum,
            )  # fmt: skip
            if approve:
                await self._write(self._vote_event(entry, record))  # recorded before it counts
                entry = self._decidable(action_id, approver)
                entry.votes[UserId(approver.id)] = record
                self._records.append(record)
                if after is State.APPROVED:
                    names = ", ".join(v.approver_name for v in entry.votes.values())
                    self._finish(entry, State.APPROVED, f"approved by {names}", actor=None)
                else:
                    self._notify("updated", entry)
                return record
            self._records.append(record)
            self._events.append(self._vote_event(entry, record))
            self._finish(entry, State.DENIED, f"denied by {approver.name}", actor=None)
        with contextlib.suppress(Exception):  # a denial stands; run() retries the write
            await self.flush()
        return record

    def _decidable(self, action_id: str, approver: User) -> _Entry:
        """The pending entry ``approver`` may still decide; raises with a clear message otherwise."""
        entry = self._pending.get(action_id)
        if entry is not None and self._clock.now() >= entry.deadline:
            self._finish(entry, State.TIMED_OUT, self._timeout_reason(entry), actor="system")
            entry = None
        if entry is None:
            done = self._done.get(action_id)
            if done is None:
                raise Gone(
                    "no such held action: it was decided long ago or never existed", code="approval_unknown"
                )
            match done.state:
                case State.TIMED_OUT:
                    raise Gone(f"too late: this action {done.reason}", code="approval_expired")
                case State.CANCELLED:
                    raise Gone(f"this action was withdrawn: {done.reason}", code="approval_cancelled")
                case _:
                    raise Conflict(f"this action was already decided: {done.reason}", code="approval_decided")
        action = entry.action
        if approver.id == action.requester_id and not action.allow_self_approval:
            raise Forbidden(
                "you asked for this action: policy does not let you decide on it yourself",
                code="approval_self",
            )
        if not self.may_approve(action, approver):
            raise Forbidden("you are not an approver of this action", code="approval_not_approver")
        if approver.id in entry.votes:
            raise Conflict(
                f"you already approved this action; it waits for {action.quorum - len(entry.votes)} more",
                code="approval_duplicate",
            )
        return entry

    # ---- outcomes ------------------------------------------------------------------------

    def _finish(self, entry: _Entry, state: State, reason: str, *, actor: str | None) -> None:
        """End a pending entry: call back once, audit (unless the decision's event is written), notify."""
        self._pending.pop(entry.action.action_id, None)
        entry.state, entry.reason, entry.decided_at = state, reason, self._clock.now()
        entry.nonces.clear()
        self._done[entry.action.action_id] = entry
        while len(self._done) > RECENT_ACTIONS:
            self._done.popitem(last=False)
        if actor is not None:
            kind = "approval.timed_out" if state is State.TIMED_OUT else "approval.denied"
            self._emit(kind, actor, "fail", entry, reason=reason, cancelled=state is State.CANCELLED)
        asyncio.get_running_loop().call_soon(
            self._deliver, entry.on_decided, entry.action.action_id, state is State.APPROVED, reason
        )
        self._notify("decided", entry)
        self._wake.set()

    @staticmethod
    def _deliver(callback: Decided, action_id: str, approved: bool, reason: str) -> None:
        try:
            callback(action_id, approved, reason)
        except Exception:
            log.exception("on_decided of held action %s failed", action_id)

    def _timeout_reason(self, entry: _Entry) -> str:
        a = entry.action
        return f"timed out after {a.timeout_s:g} s with {len(entry.votes)} of {a.quorum} approvals"

    def _malformed(self, action: HeldAction) -> str | None:
        if self._stopped:
            return "the gateway is stopping"
        if len(self._pending) >= MAX_PENDING:
            return "too many actions wait for approval"
        expected = action_digest(action.session_id, action.seq, action.requester_id, action.kind, action.text)
        if action.digest != expected:
            return "the action's digest does not match its content"
        return None

    async def sweep(self) -> None:
        """Deny what passed its deadline, then write queued audit events."""
        async with self._decide_lock:
            now = self._clock.now()
            for entry in [e for e in self._pending.values() if now >= e.deadline]:
                self._finish(entry, State.TIMED_OUT, self._timeout_reason(entry), actor="system")
        await self.flush()

    async def run(self) -> None:
        """Sweep deadlines and write audit events until cancelled; then deny what is left."""
        try:
            while True:
                self._wake.clear()
                try:
                    await self.sweep()
                except Exception:
                    log.exception("approvals: audit write failed; retrying")
                deadlines = [e.deadline for e in self._pending.values()]
                delay = min([TICK_S, *(d - self._clock.now() for d in deadlines)])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, delay))
        finally:
            self._stopped = True
            for entry in list(self._pending.values()):
                self._finish(entry, State.CANCELLED, "the gateway is stopping", actor="system")
            for queue in list(self._subscribers):
                self._put(queue, InboxChange("closed"))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), STOP_FLUSH_S)

    # ---- audit ---------------------------------------------------------------------------

    def _event(
        self, type_: str, actor: str, outcome: Literal["ok", "fail", "info"], entry: _Entry, **extra: Any
    ) -> AuditEvent:
        a = entry.action
        detail: dict[str, Any] = {
            "action": a.action_id, "session": a.session_id, "seq": a.seq, "requester": a.requester_id,
            "requester_name": a.requester_name, "kind": a.kind, "rule": a.rule,
            "policy_version": a.policy_version, "digest": a.digest, "quorum": a.quorum,
            "approvals": len(entry.votes), **extra,
        }  # fmt: skip
        return AuditEvent(
            ts=self._clock.now(),
            type=type_,
            actor=actor,
            subject=a.session_id,
            outcome=outcome,
            detail=detail,
        )

    def _vote_event(self, entry: _Entry, r: DecisionRecord) -> AuditEvent:
        final = r.state_after is not State.PENDING
        outcome: Literal["ok", "fail", "info"] = "fail" if not r.approve else "ok" if final else "info"
        return self._event(
            "approval.approved" if r.approve else "approval.denied", r.approver_id, outcome, entry,
            approver=r.approver_name, credential_id=r.credential_id, assertion_sha256=r.assertion_sha256,
            nonce=r.nonce, approvals=r.approvals, final=final,
        )  # fmt: skip

    def _emit(
        self, type_: str, actor: str, outcome: Literal["ok", "fail", "info"], entry: _Entry, **extra: Any
    ) -> None:
        if len(self._events) >= AUDIT_QUEUE_MAX:
            log.error("approvals: audit queue full, dropped %s for %s", type_, entry.action.action_id)
            return
        self._events.append(self._event(type_, actor, outcome, entry, **extra))
        self._wake.set()

    async def flush(self) -> None:
        """Write queued audit events in order (an event leaves the queue only once stored)."""
        async with self._audit_lock:
            while self._events:
                await self._audit.append(self._events[0])
                self._events.popleft()

    async def _write(self, event: AuditEvent) -> None:
        """Write ``event`` after everything queued before it; ``Unavailable`` if the store fails."""
        try:
            async with self._audit_lock:
                while self._events:
                    await self._audit.append(self._events[0])
                    self._events.popleft()
                await self._audit.append(event)
        except Exception as exc:
            log.exception("approvals: cannot record a decision")
            raise Unavailable("the decision could not be recorded, so it does not count; try again") from exc

    # ---- live updates --------------------------------------------------------------------

    def subscribe(self, user: User) -> asyncio.Queue[InboxChange]:
        """Changes to actions ``user`` may decide or asked for; ``unsubscribe`` when done."""
        queue: asyncio.Queue[InboxChange] = asyncio.Queue(SUBSCRIBER_QUEUE)
        if self._stopped:
            queue.put_nowait(InboxChange("closed"))
        self._subscribers[queue] = user
        return queue

    def unsubscribe(self, queue: asyncio.Queue[InboxChange]) -> None:
        self._subscribers.pop(queue, None)

    def _notify(self, kind: Literal["held", "updated", "decided"], entry: _Entry) -> None:
        view: ActionView | None = None
        for queue, user in list(self._subscribers.items()):
            if user.id == entry.action.requester_id or self.may_approve(entry.action, user):
                view = view or entry.view()
                self._put(queue, InboxChange(kind, view))

    @staticmethod
    def _put(queue: asyncio.Queue[InboxChange], change: InboxChange) -> None:
        try:
            queue.put_nowait(change)
        except asyncio.QueueFull:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(InboxChange("resync") if change.kind != "closed" else change)
