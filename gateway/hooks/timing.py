"""How long a hook may take: the assistant's timeout, and the margins rcgate keeps below it.

Every assistant kills a hook that runs past its ``timeout`` and then **runs the tool** (fail
open; Claude Code ≥ 2.1.330 blocks instead when the entry says ``"onFailure": "block"``). So
rcgate always answers first, in two layers::

    0 ─────────────── hold ───────────────┤ T-5 endpoint answers (deny if still held)
    0 ─────────────── HTTP wait ──────────────────┤ T-2 command adapter answers deny
    0 ─────────────── assistant waits ────────────────────┤ T  assistant kills the hook

``T`` is the hook timeout rcgate writes into the assistant's settings (``hook_timeout_for``:
the longest review timeout of the policy plus the margins), passed to the command adapter in
``RCGATE_HOOK_TIMEOUT_S`` and to the endpoint in the ``X-Rcgate-Hook-Timeout`` header.
A held call waits ``min(review timeout, T - SERVER_MARGIN_S)``.
"""

from __future__ import annotations

from gateway.policy.model import Policy

DEFAULT_HOOK_TIMEOUT_S = 600  # what rcgate assumes when it is not told the hook timeout
MIN_HOOK_TIMEOUT_S = 10  # below this the margins leave no time to answer
MAX_HOOK_TIMEOUT_S = 24 * 3600 + 60  # the longest policy timeout (24 h) plus the margins
SERVER_MARGIN_S = 5  # the endpoint answers at the latest this long before the hook timeout
ADAPTER_MARGIN_S = 2  # the command adapter answers at the latest this long before it
HOOK_TIMEOUT_HEADER = "X-Rcgate-Hook-Timeout"
HOOK_TIMEOUT_ENV = "RCGATE_HOOK_TIMEOUT_S"


def clamp_hook_timeout(seconds: int) -> int:
    """``seconds`` brought into ``[MIN_HOOK_TIMEOUT_S, MAX_HOOK_TIMEOUT_S]``."""
    return max(MIN_HOOK_TIMEOUT_S, min(MAX_HOOK_TIMEOUT_S, seconds))


def parse_hook_timeout(text: str | None, default: int = DEFAULT_HOOK_TIMEOUT_S) -> int:
    """A hook timeout from a header or an environment variable: whole seconds, clamped.

    Absent, empty or not a number: ``default`` (clamped too).
    """
    if text is None or not text.strip().isdigit() or len(text.strip()) > 9:
        return clamp_hook_timeout(default)
    return clamp_hook_timeout(int(text.strip()))


def hold_budget_s(review_timeout_s: int, hook_timeout_s: int) -> float:
    """How long the endpoint may hold a call: the review's timeout, cut below the hook's."""
    return float(max(0, min(review_timeout_s, clamp_hook_timeout(hook_timeout_s) - SERVER_MARGIN_S)))


def adapter_budget_s(hook_timeout_s: int) -> float:
    """How long the command adapter waits for the gateway before it answers deny itself."""
    return float(clamp_hook_timeout(hook_timeout_s) - ADAPTER_MARGIN_S)


def longest_review_timeout_s(policy: Policy) -> int:
    """The longest time policy may hold a tool call (rule timeouts and the default)."""
    timeouts = [policy.defaults.held_action_timeout_s]
    timeouts += [r.timeout_s for r in policy.tool_rules if r.timeout_s is not None]
    timeouts += [r.timeout_s for r in policy.permission_mode_rules if r.timeout_s is not None]
    return max(timeouts)


def hook_timeout_for(policy: Policy) -> int:
    """The hook timeout to give the assistant so that every held call gets its full review time."""
    return clamp_hook_timeout(longest_review_timeout_s(policy) + SERVER_MARGIN_S + ADAPTER_MARGIN_S + 3)
