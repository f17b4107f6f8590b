"""Mode policies: the file format, the pure decision engine, and its explanation.

Public surface: ``parse_policy`` (YAML text to a validated ``Policy``), ``decide`` and
``explain`` (pure), the decision values, the facts the engine is asked about, and ``lint``.
"""

from gateway.policy.decisions import Allow, Approvers, Decision, Deny, Outcome, Review, StepUp
from gateway.policy.engine import Timeouts, can_approve, decide, explain, grantable_modes, timeouts_for
from gateway.policy.facts import (
    Action,
    Actor,
    Assistant,
    Key,
    KeyClass,
    RequestMode,
    Resize,
    SessionFacts,
    SubmitLine,
    ToolCall,
)
from gateway.policy.lint import LintWarning, lint
from gateway.policy.loader import (
    PolicyError,
    Problem,
    export_json_schema,
    parse_policy,
    policy_version,
    shipped_policy_text,
)
from gateway.policy.model import Policy
from gateway.policy.trail import Explanation, Step

__all__ = [
    "Action",
    "Actor",
    "Allow",
    "Approvers",
    "Assistant",
    "Decision",
    "Deny",
    "Explanation",
    "Key",
    "KeyClass",
    "LintWarning",
    "Outcome",
    "Policy",
    "PolicyError",
    "Problem",
    "RequestMode",
    "Resize",
    "Review",
    "SessionFacts",
    "Step",
    "StepUp",
    "SubmitLine",
    "Timeouts",
    "ToolCall",
    "can_approve",
    "decide",
    "explain",
    "export_json_schema",
    "grantable_modes",
    "lint",
    "parse_policy",
    "policy_version",
    "shipped_policy_text",
    "timeouts_for",
]
