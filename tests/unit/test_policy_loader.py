"""Loading policy files: every refusal names file, line and field; overlaps are linted, not refused."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gateway.core.errors import BadRequest
from gateway.core.models import FactorKind
from gateway.core.modes import Mode
from gateway.policy import (
    LintWarning,
    Outcome,
    PolicyError,
    export_json_schema,
    lint,
    parse_policy,
    policy_version,
    shipped_policy_text,
)

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "policy.schema.json"
REGENERATE = (
    '.venv/bin/python -c "import json; from gateway.policy import export_json_schema; '
    "open('docs/policy.schema.json','w')"
    ".write(json.dumps(export_json_schema(), indent=2, ensure_ascii=False)+'\\n')\""
)
MODES = " (modes are view_only, approved_execution, privileged)"


def refusal(text: str) -> str:
    with pytest.raises(PolicyError) as err:
        parse_policy(textwrap.dedent(text).lstrip("\n"), "policy.yaml")
    return err.value.message


# --- refusals: (yaml, the exact first line of the message) ---------------------------------

REFUSALS = [
    pytest.param(
        """
        version: 1
        command_rules:
          - id: a
            match: {any: true}
            actoin: allow
        """,
        "policy.yaml:3: command_rules[0]: missing key 'action'\n"
        "policy.yaml:5: command_rules[0]: unknown key 'actoin' (did you mean 'action'?)",
        id="unknown key, with its line and a suggestion",
    ),
    pytest.param(
        """
        version: 1
        command_rule: []
        """,
        "policy.yaml:2: unknown key 'command_rule' (did you mean 'command_rules'?)",
        id="unknown top-level key",
    ),
    pytest.param(
        """
        version: 1
        command_rules:
          - id: a
            match: {argv_prefix: [ls]}
            action: allow
          - id: b
            match: {any: true}
            action: review
          - id: c
            match:
              regex: '(unclosed'
            action: deny
        """,
        "policy.yaml:11: command_rules[2].match.regex: bad regular expression: "
        "missing ), unterminated subpattern at position 0",
        id="bad regex, naming the field",
    ),
    pytest.param(
        """
        version: 1
        tool_rules:
          - id: t
            tool: Bash
            match: {command_regex: '(a+)+$'}
            action: deny
        """,
        "policy.yaml:5: tool_rules[0].match.command_regex: nested quantifier at position 4 could backtrack "
        "for a very long time; make the inner repetition possessive (a++) or atomic ((?>a+))",
        id="regex bomb refused",
    ),
    pytest.param(
        f"""
        version: 1
        command_rules:
          - id: long
            match: {{regex: '{"a" * 600}'}}
            action: deny
        """,
        "policy.yaml:4: command_rules[0].match.regex: regular expression longer than 512 characters",
        id="over-long regex refused",
    ),
    pytest.param(
        """
        version: 1
        grants:
          - id: same
            who: {owner: true}
            modes: [view_only]
        command_rules:
          - id: same
            match: {any: true}
            action: deny
        """,
        "policy.yaml:7: command_rules[0].id: duplicate rule id 'same' (first used by grants[0])",
        id="duplicate rule id across sections",
    ),
    pytest.param(
        """
        version: 1
        command_default: allow
        command_default: deny
        """,
        "policy.yaml:3: duplicate key 'command_default' (first at line 2)",
        id="duplicate yaml key (PyYAML would keep the last silently)",
    ),
    pytest.param(
        """
        version: 1
        grants:
          - id: g
            who: {owner: true}
            modes:
              - view_only
              - superuser
        """,
        "policy.yaml:7: grants[0].modes: unknown mode 'superuser'" + MODES,
        id="unknown mode in a grant list",
    ),
    pytest.param(
        """
        version: 1
        grants:
          - id: g
            who: {owner: true}
            modes:
              view_only:
              root: {}
        """,
        "policy.yaml:7: grants[0].modes: unknown mode 'root'" + MODES,
        id="unknown mode in a grant mapping",
    ),
    pytest.param(
        """
        version: 1
        defaults:
          stepup:
            admin: {max_age_s: 30}
        """,
        "policy.yaml:4: defaults.stepup: unknown mode 'admin'" + MODES,
        id="unknown mode in stepup",
    ),
    pytest.param(
        """
        version: 1
        grants:
          - id: g
            who: {owner: true}
            modes: [1]
        """,
        "policy.yaml:5: grants[0].modes: a mode name is a string" + MODES,
        id="a mode name that is not a string",
    ),
    pytest.param(
        """
        version: 1
        grants:
          - id: g
            who: {owner: true}
            modes: [privileged]
        """,
        "policy.yaml:5: grants[0].modes: privileged needs settings: write it as a key, "
        "`privileged: {enabled: true, approvers: …}`",
        id="privileged needs explicit settings",
    ),
    pytest.param(
        """
        version: 1
        grants:
          - id: g
            who: {owner: true}
            modes:
              privileged: {enabled: true, factors: [totp]}
        """,
        "policy.yaml:6: grants[0].modes.privileged: "
        "privileged mode needs a passkey (WebAuthn) only: factors: [passkey]",
        id="privileged with TOTP refused",
    ),
    pytest.param(
        """
        version: 1
        grants:
          - id: g
            who: {}
            modes: [view_only]
        """,
        "policy.yaml:4: grants[0].who: who names nobody: set everyone, owner, users, groups or roles",
        id="grant for nobody",
    ),
    pytest.param(
        """
        version: 1
        command_rules:
          - id: a
            match: {any: true}
            action: review
            approvers: {}
        """,
        "policy.yaml:6: command_rules[0].approvers: approvers name nobody: set owner, users, groups or roles",
        id="approvers naming nobody",
    ),
    pytest.param(
        """
        version: 1
        command_rules:
          - id: a
            match: {any: true, argv_prefix: [ls]}
            action: allow
        """,
        "policy.yaml:4: command_rules[0].match: "
        "match needs exactly one of regex, argv_prefix, any (got argv_prefix, any)",
        id="two matchers in one command rule",
    ),
    pytest.param(
        """
        version: 1
        command_rules:
          - id: a
            match: {any: true}
            action: maybe
        """,
        "policy.yaml:5: command_rules[0].action: Input should be 'allow', 'review' or 'deny'",
        id="unknown action",
    ),
    pytest.param(
        """
        version: 1
        grants:
          - id: g
            who: {owner: 'yes'}
            modes: [view_only]
        """,
        "policy.yaml:4: grants[0].who.owner: Input should be a valid boolean",
        id="strings are not booleans",
    ),
    pytest.param(
        """
        version: 1
        defaults:
          held_action_timeout_s: 0
        """,
        "policy.yaml:3: defaults.held_action_timeout_s: Input should be greater than 0",
        id="non-positive timeout",
    ),
    pytest.param("version: 2\n", "policy.yaml:1: version: Input should be 1", id="unknown version"),
    pytest.param("grants: []\n", "policy.yaml:1: missing key 'version'", id="missing version"),
    pytest.param("", "policy.yaml: the policy is empty; it needs at least `version: 1`", id="empty file"),
    pytest.param(
        "# only a comment\n",
        "policy.yaml: the policy is empty; it needs at least `version: 1`",
        id="comments only",
    ),
    pytest.param(
        "version: 1\n  grants: [\n",
        "policy.yaml:2: not valid YAML: mapping values are not allowed here",
        id="garbage",
    ),
    pytest.param(
        "just some words",
        "policy.yaml:1: a policy is a mapping of keys (version: 1, grants: …)",
        id="a scalar is not a policy",
    ),
    pytest.param(
        "\x00\x01binary",
        "policy.yaml: not valid YAML: unacceptable character #x0000: special characters are not allowed",
        id="binary garbage",
    ),
]


@pytest.mark.parametrize(("text", "message"), REFUSALS)
def test_refusal_names_file_line_and_field(text: str, message: str) -> None:
    assert refusal(text) == message


def test_alias_bomb_is_refused() -> None:
    text = "version: 1\na: &a [x,x,x,x,x,x,x,x,x,x]\n"
    for name, prev in zip("bcdef", "abcde", strict=True):
        text += f"{name}: &{name} [{','.join([f'*{prev}'] * 10)}]\n"
    assert refusal(text) == "policy.yaml: more than 50000 values (after YAML aliases)"


def test_oversized_file_is_refused() -> None:
    assert "larger than" in refusal("version: 1\n" + "#" * (1024 * 1024))


def test_policy_error_is_a_bad_request_with_structured_problems() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy("version: 1\nbogus: 1\n", "p.yaml")
    assert isinstance(err.value, BadRequest) and err.value.status == 400
    assert err.value.to_dict()["problems"] == [{"line": 2, "field": "", "message": "unknown key 'bogus'"}]


# --- accepted forms -------------------------------------------------------------------------


def test_minimal_policy_is_deny_by_default() -> None:
    p = parse_policy("version: 1\n", "p.yaml")
    assert p.grants == () and p.command_default is Outcome.DENY and p.tool_default is Outcome.REVIEW
    assert p.key_rules.interrupt is Outcome.ALLOW and p.key_rules.raw is Outcome.DENY
    assert p.key_rules.mode_switch is Outcome.DENY
    assert p.defaults.held_action_timeout_s == 120


def test_short_forms_expand() -> None:
    p = parse_policy(
        textwrap.dedent(
            """
            version: 1
            grants:
              - id: g
                who: {groups: [dev]}
                modes:
                  view_only:
                  approved_execution: {factors: [passkey], max_age_s: 60}
            tool_rules:
              - id: t
                tool: Bash
                action: allow
            """
        ),
        "p.yaml",
    )
    modes = p.grants[0].modes
    assert modes.get(Mode.VIEW_ONLY) is not None and modes.get(Mode.PRIVILEGED) is None
    assert modes.approved_execution is not None and modes.approved_execution.factors == (FactorKind.PASSKEY,)
    assert p.tool_rules[0].tool == ("Bash",)


def test_possessive_and_atomic_regexes_are_accepted() -> None:
    text = (
        "version: 1\ncommand_rules:\n  - id: a\n    match: {regex: '^ls( -[a-z]++)*$'}\n    action: allow\n"
    )
    assert parse_policy(text, "p.yaml").command_rules[0].match.regex is not None


@pytest.mark.parametrize("name", ["default", "demo"])
def test_shipped_policies_load_and_lint_clean(name: str) -> None:
    policy = parse_policy(shipped_policy_text(name), f"{name}_policy.yaml")  # type: ignore[arg-type]
    assert policy.version == 1
    assert lint(policy) == []


def test_policy_version_is_a_stable_hash_prefix() -> None:
    assert policy_version("version: 1\n") == policy_version("version: 1\n")
    assert policy_version("version: 1\n") != policy_version("version: 1\n# edited\n")
    assert len(policy_version("")) == 16


def test_json_schema_file_is_up_to_date() -> None:
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == export_json_schema(), f"docs/policy.schema.json is stale; regenerate: {REGENERATE}"


# --- overlapping rules: first match wins, and lint says so -----------------------------------

OVERLAPS = """
version: 1
grants:
  - id: dev
    who: {groups: [dev]}
    modes: [view_only]
  - id: dev-again
    who: {groups: [dev]}
    modes: [view_only, approved_execution]
  - id: priv-off
    who: {groups: [ops]}
    modes:
      privileged: {enabled: false}
command_rules:
  - id: git
    match: {argv_prefix: [git]}
    action: allow
  - id: git-push
    match: {argv_prefix: [git, push]}
    action: deny
  - id: everything
    match: {any: true}
    action: review
  - id: after-everything
    match: {regex: 'x'}
    action: allow
    quorum: 2
tool_rules:
  - id: all-bash
    tool: Bash
    action: review
  - id: bash-ls
    tool: Bash
    match: {command_argv_prefix: [ls]}
    action: allow
command_default: allow
key_rules: {raw: allow}
"""


def test_lint_reports_shadowed_rules_and_risky_settings() -> None:
    warnings = lint(parse_policy(OVERLAPS, "p.yaml"))
    assert warnings == [
        LintWarning("dev-again", "never decides view_only: grant 'dev' comes first for the same people"),
        LintWarning("priv-off", "gives privileged with enabled: false, so it gives nothing for it"),
        LintWarning(
            "git-push", "never decides: command rule 'git' comes first and matches everything it does"
        ),
        LintWarning(
            "after-everything",
            "never decides: command rule 'everything' comes first and matches everything it does",
        ),
        LintWarning(
            "bash-ls", "never decides: tool rule 'all-bash' comes first and matches everything it does"
        ),
        LintWarning(
            "after-everything",
            "approvers, quorum, allow_self_approval and timeout_s only apply to review, not allow",
        ),
        LintWarning(
            "all-bash",
            "only the owner may approve, but the owner requests tool calls and self-approval is off: "
            "the call will time out and be denied",
        ),
        LintWarning(
            "tool_default",
            "review by defaults.approvers (the owner only): "
            "tool calls no rule names will time out and be denied",
        ),
        LintWarning("command_default", "allows every command no rule names (deny by default is safer)"),
        LintWarning("key_rules.raw", "allowing these keys lets input bypass the command rules"),
    ]


def test_lint_reports_risky_grants_defaults_and_shadowed_permission_rules() -> None:
    policy = parse_policy(
        textwrap.dedent(
            """
            version: 1
            grants:
              - id: anyone-root
                who: {everyone: true}
                modes:
                  privileged: {enabled: true, approvers: {roles: [admin]}}
            permission_mode_rules:
              - id: any-bypass
                permission_mode: "*"
                action: review
                approvers: {roles: [admin]}
              - id: bypass-write
                permission_mode: bypassPermissions
                tool: Write
                action: deny
            tool_default: allow
            """
        ),
        "p.yaml",
    )
    assert lint(policy) == [
        LintWarning("anyone-root", "lets everyone request privileged mode"),
        LintWarning(
            "bypass-write",
            "never decides: permission-mode rule 'any-bypass' comes first and matches everything it does",
        ),
        LintWarning("tool_default", "allows every tool call no rule names (review is safer)"),
    ]
