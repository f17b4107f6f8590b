"""The admin policy API: in force, validate, save with versions, refused reloads, explain."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.core.models import Role
from gateway.policy import shipped_policy_text
from gateway.policy_watch import PolicyWatcher
from tests.integration.conftest import Gateway

ROOT = Path(__file__).resolve().parents[2]


async def test_admin_sees_the_policy_in_force_with_its_version(gateway: Gateway) -> None:
    admin, _ = await gateway.enrol_passkey("root", Role.ADMIN)
    status, body = await admin.call("GET", "/api/admin/policy")
    assert status == 200 and body["source"] == "shipped demo policy" and len(body["version"]) == 16
    assert body["error"] is None and body["editable"] is False


async def test_members_cannot_read_the_policy(gateway: Gateway) -> None:
    member, _ = await gateway.enrol_passkey("mia")
    status, _ = await member.call("GET", "/api/admin/policy")
    assert status == 403


async def test_validate_names_line_and_field_of_each_problem(gateway: Gateway) -> None:
    admin, _ = await gateway.enrol_passkey("root", Role.ADMIN)
    bad = "version: 1\ncommand_rules:\n  - id: x\n    match: {regex: '(a+)+'}\n    actoin: allow\n"
    status, body = await admin.post("/api/admin/policy/validate", {"text": bad})
    assert status == 200 and body["valid"] is False
    fields = {p["field"] for p in body["problems"]}
    assert any("actoin" in p["message"] for p in body["problems"]), body
    assert all(p["line"] for p in body["problems"]), body
    assert fields
    status, body = await admin.post("/api/admin/policy/validate", {"text": shipped_policy_text("default")})
    assert body["valid"] is True and body["warnings"] == []


async def test_explain_box_gives_the_same_rule_as_the_cli(gateway: Gateway, tmp_path: Path) -> None:
    admin, _ = await gateway.enrol_passkey("root", Role.ADMIN)
    await gateway.identity.add_user("bob", Role.MEMBER, ["dev"])
    await gateway.identity.add_user("olivia")
    status, body = await admin.post(
        "/api/admin/policy/explain",
        {"user": "bob", "owner": "olivia", "mode": "approved_execution", "input": "rm -rf build"},
    )
    assert status == 200 and body["rule"] == "rm-recursive-or-force", body
    assert body["decision"] == "review"
    assert body["text"].startswith("decision: review (rule rm-recursive-or-force)")


async def test_cli_explain_prints_the_deciding_rule(tmp_path: Path) -> None:
    rcgate = [sys.executable, "-m", "gateway.cli"]
    data = ["--data-dir", str(tmp_path)]
    subprocess.run([*rcgate, "users", "add", "bob", "--group", "dev", *data], check=True, capture_output=True)
    subprocess.run([*rcgate, "users", "add", "olivia", *data], check=True, capture_output=True)
    out = subprocess.run(
        [*rcgate, "policy", "explain", "--user", "bob", "--owner", "olivia", "--mode", "approved_execution",
         "--input", "rm -rf build", *data],
        capture_output=True, text=True, check=True,
        env={"RCGATE_POLICY__FILE": str(ROOT / "gateway/policy/demo_policy.yaml"), "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    assert "decision: review (rule rm-recursive-or-force)" in out
    tool = subprocess.run(
        [*rcgate, "policy", "explain", "--user", "bob", "--owner", "olivia", "--tool", "Bash", "--assistant",
         "claude", "--input", '{"command": "rm -rf build"}', *data],
        capture_output=True, text=True, check=True,
        env={"RCGATE_POLICY__FILE": str(ROOT / "gateway/policy/demo_policy.yaml"), "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    assert "rule shell-rm-recursive" in tool


async def test_a_garbage_file_is_refused_and_the_old_policy_stays(gateway: Gateway, tmp_path: Path) -> None:
    file = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "gateway/policy/demo_policy.yaml", file)
    store = gateway.identity._store
    watcher = PolicyWatcher(
        file=file, shipped="default", data_dir=tmp_path / "w", audit=store, clock=gateway.clock
    )
    first = await watcher.load()
    file.write_text("this: [is not: a policy\n")
    await watcher.check_once()
    assert watcher.current().version == first.version
    assert watcher.last_error and "policy.yaml" in watcher.last_error
    file.write_text(shipped_policy_text("default"))
    os.utime(file, (first.loaded_at + 10, first.loaded_at + 10))
    await watcher.check_once()
    assert watcher.current().version != first.version and watcher.last_error is None
    assert len(watcher.versions()) == 2
    types = [e.type for e in await gateway.identity.audit_events(limit=500)]
    assert types.count("policy.loaded") >= 2 and "policy.refused" in types


@pytest.mark.parametrize("gateway", ["demo"], indirect=True)
async def test_saving_needs_a_policy_file(gateway: Gateway) -> None:
    admin, _ = await gateway.enrol_passkey("root", Role.ADMIN)
    status, body = await admin.post("/api/admin/policy", {"text": shipped_policy_text("default")})
    assert status == 400 and "policy.file" in body["message"]
