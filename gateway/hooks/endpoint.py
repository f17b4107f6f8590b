"""The gateway side of a hook call: payload in, policy decision, hold for approval, answer out.

The aiohttp handler for ``POST /api/hooks/{assistant}`` authenticates the hook token,
finds the session, reads the JSON body (at most ``MAX_PAYLOAD_BYTES``) and calls
``answer_hook``; it returns ``answer.body`` as the JSON 200 body and audits ``answer``
(``call``, ``verdict``, ``rule``, ``reason``). ``answer_hook`` raises only
``UnknownAssistant`` (404: there is no format to answer in); everything else, including a
malformed payload, a policy failure or a failing approval callback, is answered with a
**deny in the assistant's own format** (fail closed).

Policy → verdict
----------------
``Allow``   PASS (``{}``: the assistant's own permission flow goes on), or APPROVE when the
            caller passes ``auto_approve=True`` (skips the assistant's prompt; see
            ``gateway.hooks.model``).
``Deny``    DENY with the rule's reason.
``StepUp``  DENY (a tool call has nobody to present a factor).
``Review``  hold: ``await await_approval(held)`` for at most
            ``min(review.timeout_s, hook_timeout_s - SERVER_MARGIN_S)``. True → APPROVE (a
            person approved this exact call, so the assistant's own prompt is skipped too);
            False, an exception or the time running out → DENY. On timeout the callback is
            **cancelled**: the approvals service must then refuse a late approval of that call
            (the approval-racing-timeout case), and it gets ``held.deadline`` to enforce the same.

Result and prompt events (``PostToolUse``, ``UserPromptSubmit``…) are parsed and answered
``{}`` (RECORDED); the caller records them.

Keep-alive while a call is held: JSON allows leading whitespace, so the handler may send the
200 status and headers at once, then a space every few seconds (so that no proxy idles the
connection out), then ``answer.body``. ``rcgate hook`` and Claude Code's ``http`` hook both
parse such a body; since ``answer_hook`` answers a deny instead of raising, no error status is
ever needed after the headers went out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.hooks.model import HookAnswer, HookCall, HookError, Verdict, fail_closed
from gateway.hooks.registry import adapter_for
from gateway.hooks.timing import DEFAULT_HOOK_TIMEOUT_S, hold_budget_s
from gateway.policy import Actor, Allow, Deny, Policy, Review, SessionFacts, StepUp, ToolCall, decide

log = logging.getLogger("rcgate.hooks")


@dataclass(frozen=True, slots=True)
class HeldCall:
    """A tool call policy holds for review, as handed to ``await_approval``.

    ``deadline`` is wall-clock seconds (the clock of ``now``): after it the call is denied,
    and an approval that arrives later must not count.
    """

    call: HookCall
    tool_call: ToolCall
    review: Review
    session: SessionFacts
    requester: Actor
    deadline: float


AwaitApproval = Callable[[HeldCall], Awaitable[bool]]


async def answer_hook(
    assistant: str,
    payload: object,
    session: SessionFacts,
    actor: Actor,
    policy: Policy,
    *,
    now: float,
    await_approval: AwaitApproval,
    hook_timeout_s: int = DEFAULT_HOOK_TIMEOUT_S,
    auto_approve: bool = False,
) -> HookAnswer:
    """Answer one hook call of ``assistant`` for ``session``; ``actor`` is who the assistant acts for.

    ``now`` is wall-clock seconds (policy freshness and ``HeldCall.deadline``); the hold itself
    is timed by the event loop. Raises ``UnknownAssistant`` only.
    """
    adapter = adapter_for(assistant)
    if not isinstance(payload, dict):
        return fail_closed(adapter, payload, "the hook payload is not a JSON object")
    try:
        call = adapter.parse(payload)
    except HookError as exc:
        return fail_closed(adapter, payload, f"unreadable hook payload ({exc.message})")
    if not call.kind.is_gate or call.tool_call is None:
        return dataclasses.replace(adapter.render(call.event, Verdict.RECORDED), call=call)
    facts = session
    if call.permission_mode is not None:
        facts = dataclasses.replace(session, permission_mode=call.permission_mode)
    try:
        decision = decide(policy, actor, facts, None, call.tool_call, now=now)
    except Exception:  # the engine raises for nothing a request can cause; fail closed regardless
        log.exception("policy evaluation failed for a %s hook call", assistant)
        return dataclasses.replace(fail_closed(adapter, payload, "policy evaluation failed"), call=call)
    match decision:
        case Allow():
            verdict = Verdict.APPROVE if auto_approve else Verdict.PASS
            reason = f"rcgate: allowed by policy rule {decision.rule}"
        case Deny():
            verdict, reason = Verdict.DENY, f"rcgate: {decision.reason} (policy rule {decision.rule})"
        case StepUp():
            verdict, reason = Verdict.DENY, f"rcgate: rule {decision.rule} asks for a fresh factor"
        case Review():
            budget = hold_budget_s(decision.timeout_s, hook_timeout_s)
            held = HeldCall(call, call.tool_call, decision, facts, actor, deadline=now + budget)
            verdict, reason = await _hold(held, await_approval, budget)
    answer = adapter.render(call.event, verdict, reason)
    return dataclasses.replace(answer, rule=decision.rule, call=call)


async def _hold(held: HeldCall, await_approval: AwaitApproval, budget_s: float) -> tuple[Verdict, str]:
    rule = held.review.rule
    why = f" ({held.review.reason})" if held.review.reason else ""
    if budget_s <= 0:
        return Verdict.DENY, f"rcgate: rule {rule} holds this call, but the hook timeout leaves no time"
    try:
        approved = await asyncio.wait_for(await_approval(held), budget_s)
    except TimeoutError:
        return Verdict.DENY, f"rcgate: no approval within {budget_s:.0f} s (policy rule {rule}{why})"
    except Exception:
        log.exception("approval callback failed for rule %s", rule)
        return Verdict.DENY, f"rcgate: the approval could not be obtained (policy rule {rule})"
    if approved is True:
        return Verdict.APPROVE, f"rcgate: approved under policy rule {rule}"
    return Verdict.DENY, f"rcgate: an approver refused this call (policy rule {rule}{why})"
