"""The `rcgate` command: argument parsing, exit codes and printing only; the work is in gateway.app.

Exit codes: 0 success, 1 the operation failed, 2 usage or settings error.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.core.errors import BadRequest, GatewayError
from gateway.core.models import FactorKind, Role
from gateway.core.modes import Mode
from gateway.settings import Settings, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_GATEWAY_URL = "http://localhost:8080"


def _store_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("settings")
    g.add_argument(
        "--config", type=Path, metavar="FILE", help="settings file (YAML); RCGATE_* variables also apply"
    )
    g.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="where the embedded store and keys live (./data)"
    )
    g.add_argument("--store", choices=["embedded", "redis"], help="store backend (default: embedded)")
    g.add_argument("--redis-url", metavar="URL", help="Redis URL for --store redis")


def _serve_options(p: argparse.ArgumentParser) -> None:
    _store_options(p)
    g = p.add_argument_group("http")
    g.add_argument("--host", help="address to listen on (default localhost)")
    g.add_argument("--port", type=int, help="HTTP port (default 8080)")
    g.add_argument("--public-url", metavar="URL", help="URL browsers use (defines the WebAuthn origin)")
    g.add_argument("--tls-cert", type=Path, metavar="PEM", help="TLS certificate chain")
    g.add_argument("--tls-key", type=Path, metavar="PEM", help="TLS private key")
    g.add_argument(
        "--ssh-port", type=int, metavar="PORT", help="SSH endpoint port (default 2222; 0 = any free port)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rcgate",
        description="rcgate: remote-control session gateway with PAM-style recording for AI assistants.",
    )
    parser.add_argument("--version", action="version", version=f"rcgate {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    serve = verbs.add_parser("serve", help="run the gateway", description="Run the gateway (HTTP + API).")
    _serve_options(serve)

    demo = verbs.add_parser(
        "demo",
        help="run the gateway with a bootstrapped admin (what `make run` starts)",
        description="Run the gateway on http://localhost:8080 with the embedded store; create the admin "
        "account on first start and print its one-time enrolment link.",
    )
    _serve_options(demo)

    users = verbs.add_parser(
        "users", help="manage users", description="Add, list, disable users; reset factors."
    )
    uverbs = users.add_subparsers(dest="users_verb", metavar="ACTION", required=True)
    add = uverbs.add_parser(
        "add",
        help="add a user and print a one-time enrolment link",
        description="Add a user; prints a one-time enrolment link (valid 24 h, single use).",
    )
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.MEMBER.value)
    add.add_argument("--group", action="append", default=[], metavar="G", help="group (repeatable)")
    _store_options(add)
    ls = uverbs.add_parser("list", help="list users", description="List users.")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    _store_options(ls)
    dis = uverbs.add_parser(
        "disable",
        help="disable a user and end their logins",
        description="Disable a user and end every login session of theirs.",
    )
    dis.add_argument("name")
    _store_options(dis)
    reset = uverbs.add_parser(
        "reset-factors",
        help="remove a user's factors and print a new enrolment link",
        description="Remove every factor and the password; print a new enrolment link.",
    )
    reset.add_argument("name")
    _store_options(reset)
    hook = verbs.add_parser(
        "hook",
        help="answer an assistant's tool hook through the gateway (fail closed)",
        description="Read an assistant hook's JSON on stdin, ask the gateway (RCGATE_GATEWAY, "
        "RCGATE_HOOK_TOKEN), print the answer in that assistant's format. Any error answers deny.",
    )
    hook.add_argument("assistant", choices=["claude", "codex", "gemini"])

    sess = verbs.add_parser(
        "sessions",
        help="list live sessions or end remote control of one (owner or admin)",
        description="List your live sessions (admins: all) or end remote control of one; signs in with "
        "user name, password and a TOTP code. The program keeps running for its owner.",
    )
    sess.add_argument("action", choices=["list", "end"])
    sess.add_argument("id", nargs="?", help="the session id (for end)")
    sess.add_argument("--gateway", metavar="URL", help="gateway URL (default: the one `rcgate login` stored)")
    lnk = verbs.add_parser(
        "links",
        help="create, list or revoke a session's remote-control links (owner or admin)",
        description="Links grant nothing alone: opening one needs sign-in, a fresh factor and policy. "
        "Signs in with user name, password and a TOTP code.",
    )
    lnk.add_argument("action", choices=["create", "list", "revoke"])
    lnk.add_argument("session", help="the session id")
    lnk.add_argument("link", nargs="?", help="the link id (for revoke)")
    lnk.add_argument("--mode", choices=["view_only", "approved_execution"], default="view_only")
    lnk.add_argument("--for", dest="for_user", metavar="USER", help="only this user may redeem it")
    lnk.add_argument("--ttl", default="10m", help="time to redeem: 90s, 10m, 1h (default 10m)")
    lnk.add_argument("--gateway", metavar="URL", help="gateway URL (default: the one `rcgate login` stored)")

    appr = verbs.add_parser(
        "approvals",
        help="list, approve or deny held actions (sign-in and a TOTP step-up at the prompt)",
        description="Decide held actions from a terminal: signs in with user name, password and a TOTP code, "
        "then asks for the next code to approve or deny.",
    )
    appr.add_argument("action", choices=["list", "approve", "deny"])
    appr.add_argument("id", nargs="?", help="the held action's ID (from `list`)")
    appr.add_argument("--gateway", metavar="URL", help="gateway URL (default: the one `rcgate login` stored)")

    policy = verbs.add_parser(
        "policy",
        help="validate, show and explain mode policies",
        description="Mode policies (docs/policy.md): validate a file, show the one in force, explain.",
    )
    pverbs = policy.add_subparsers(dest="policy_verb", metavar="ACTION", required=True)
    pval = pverbs.add_parser(
        "validate",
        help="check a policy file (errors name line and field)",
        description="Validate a policy file; exit 0 when valid (warnings printed), 1 if not.",
    )
    pval.add_argument("file", type=Path)
    pshow = pverbs.add_parser(
        "show",
        help="print the policy in force and its version",
        description="Print the policy in force (settings policy.file, or the shipped one).",
    )
    _store_options(pshow)
    pexp = pverbs.add_parser(
        "explain",
        help="which rule decides an action, and why",
        description="Explain a decision: e.g. rcgate policy explain --user bob --mode approved_execution "
        "--input 'rm -rf build', or --tool Bash --input '{\"command\": \"rm -rf build\"}'.",
    )
    pexp.add_argument("--user", required=True, help="the acting user's name (role and groups from the store)")
    pexp.add_argument("--owner", help="the session owner's name (default: the acting user)")
    pexp.add_argument("--session", default="ses_explain", help="a session id (labels come from --label)")
    pexp.add_argument(
        "--label", action="append", default=[], metavar="K=V", help="session label (repeatable)"
    )
    pexp.add_argument("--host", default="", help="the session's host")
    pexp.add_argument("--assistant", default=None, help="claude, codex or gemini")
    pexp.add_argument(
        "--mode", choices=["view_only", "approved_execution", "privileged"], help="participant mode"
    )
    pexp.add_argument("--request", action="store_true", help="explain asking for --mode (not an input)")
    pexp.add_argument("--key", choices=["interrupt", "navigation", "confirm", "mode_switch", "raw"])
    pexp.add_argument(
        "--tool", help="explain a tool call of this tool (e.g. Bash); --input is its JSON input"
    )
    pexp.add_argument("--input", default=None, help="the submitted text, or the tool input as JSON")
    pexp.add_argument("--remote", type=int, default=0, help="remote participants attached (tool rules)")
    pexp.add_argument("--permission-mode", default=None, help="the assistant's permission mode (tool rules)")
    pexp.add_argument(
        "--file", type=Path, help="explain against this policy file instead of the one in force"
    )
    pexp.add_argument("--json", action="store_true", help="machine-readable output")
    _store_options(pexp)

    login = verbs.add_parser(
        "login",
        help="connect this workstation to a gateway (device login, short-lived SSH certificate)",
        description="Device login: open the printed URL, sign in, approve; the gateway CA then issues "
        "a short-lived SSH certificate for this workstation, stored 0600 in ~/.config/rcgate/.",
    )
    login.add_argument(
        "--gateway", metavar="URL", help="gateway URL (default: the last one, or http://localhost:8080)"
    )
    login.add_argument("--no-qr", action="store_true", help="do not print a QR code")

    share = verbs.add_parser(
        "share",
        help="run a program in a local terminal and share it through the gateway",
        description="Run CMD in a local pseudo-terminal (fully usable here) and share it: prints a link that "
        "needs sign-in and a fresh factor to open. Example: rcgate share --label repo=api -- claude",
    )
    share.add_argument(
        "--label", action="append", default=[], metavar="K=V", help="session label (repeatable)"
    )
    share.add_argument("--mode", choices=["view_only"], default="view_only", help="mode of the printed link")
    share.add_argument(
        "--assistant",
        choices=["claude", "codex", "gemini"],
        help="wire this assistant's tool hooks to the gateway for this run (session-scoped settings)",
    )
    share.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS]")

    from gateway.recording import cli_commands as recordings_cli

    recordings_cli.add_parser(verbs)  # verify, list, export, search, play, hold, prune … (exit 0/1/2/3)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    settings = _load(args)
    if args.verb in ("users",) and settings.http.public_url is None:
        from gateway.app import runtime_public_url

        url = runtime_public_url(settings.data_dir)
        if url:  # the running gateway's address, so printed links open
            return settings.model_copy(update={"http": settings.http.model_copy(update={"public_url": url})})
    return settings


def _load(args: argparse.Namespace) -> Settings:
    return load_settings(
        getattr(args, "config", None),
        data_dir=getattr(args, "data_dir", None),
        **{
            "store.backend": getattr(args, "store", None),
            "store.redis_url": getattr(args, "redis_url", None),
            "http.host": getattr(args, "host", None),
            "http.port": getattr(args, "port", None),
            "http.public_url": getattr(args, "public_url", None),
            "http.tls_cert": getattr(args, "tls_cert", None),
            "http.tls_key": getattr(args, "tls_key", None),
            "ssh.port": getattr(args, "ssh_port", None),
        },
    )


async def _users(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.app import services

    async with services(settings) as svc:
        identity = svc.identity
        if args.users_verb == "add":
            user, url = await identity.add_user(args.name, Role(args.role), args.group, actor="cli")
            print(
                f"added {user.name} ({user.role}); one-time enrolment link, valid "
                f"{settings.auth.enrol_link_ttl_s // 3600} h:"
            )
            print(url)
        elif args.users_verb == "list":
            users = await identity.list_users()
            rows: list[dict[str, Any]] = []
            for u in users:
                kinds = sorted({f.kind.value for f in await identity.factors_of(u.id)})
                rows.append(
                    {
                        "name": u.name,
                        "role": u.role.value,
                        "groups": list(u.groups),
                        "disabled": u.disabled,
                        "factors": kinds,
                    }
                )
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                print(f"{'NAME':<20} {'ROLE':<9} {'STATE':<9} {'FACTORS':<16} GROUPS")
                for r in rows:
                    print(
                        f"{r['name']:<20} {r['role']:<9} {'disabled' if r['disabled'] else 'active':<9} "
                        f"{','.join(r['factors']) or '-':<16} {','.join(r['groups']) or '-'}"
                    )
        elif args.users_verb == "disable":
            user = await identity.user_by_name(args.name)
            await identity.disable_user(user.id, actor="cli")
            print(f"disabled {user.name}; their login sessions are ended")
        elif args.users_verb == "reset-factors":
            user = await identity.user_by_name(args.name)
            _, url = await identity.reset_factors(user.id, actor="cli")
            print(f"removed every factor of {user.name}; new one-time enrolment link:")
            print(url)
    return EXIT_OK


async def _policy(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import policy as pol
    from gateway.app import load_policy_text

    if args.policy_verb == "validate":
        text = args.file.read_text(encoding="utf-8")
        try:
            parsed = pol.parse_policy(text, str(args.file))
        except pol.PolicyError as exc:
            print(exc.message, file=sys.stderr)
            return EXIT_FAILED
        print(f"{args.file}: valid (version {pol.policy_version(text)})")
        for w in pol.lint(parsed):
            print(f"warning: {w.rule}: {w.message}")
        return EXIT_OK
    if args.policy_verb == "show":
        text, source = load_policy_text(settings)
        print(f"# {source}  version {pol.policy_version(text)}")
        print(text, end="" if text.endswith("\n") else "\n")
        return EXIT_OK
    return await _explain(args, settings)


async def _explain(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import policy as pol
    from gateway.app import load_policy_text, services
    from gateway.core.ids import SessionId, UserId
    from gateway.policy.facts import action_from

    if args.file:
        text, source = args.file.read_text(encoding="utf-8"), str(args.file)
    else:
        text, source = load_policy_text(settings)
    policy = pol.parse_policy(text, source)
    async with services(settings) as svc:
        user = await svc.identity.user_by_name(args.user)
        owner = await svc.identity.user_by_name(args.owner) if args.owner else user
    labels = dict(item.partition("=")[::2] for item in args.label)
    actor = pol.Actor(
        user_id=UserId(user.id),
        name=user.name,
        groups=user.groups,
        role=user.role,
        last_factor=None,
        last_factor_at=None,
    )
    session = pol.SessionFacts(
        id=SessionId(args.session),
        owner_id=UserId(owner.id),
        owner_name=owner.name,
        host=args.host,
        labels=labels,
        assistant=args.assistant,
        remote_participants=args.remote,
        permission_mode=args.permission_mode,
    )
    mode = Mode(args.mode) if args.mode else None
    tool_input = None
    if args.tool:
        try:
            tool_input = json.loads(args.input or "{}")
        except json.JSONDecodeError as exc:
            raise BadRequest(f"--input must be the tool's JSON input: {exc}") from exc
    try:
        action = action_from(
            mode=mode,
            request=args.request,
            key=args.key,
            tool=args.tool,
            text=args.input,
            tool_input=tool_input,
            assistant=args.assistant,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    # Explained as if the actor had just presented a passkey: freshness is not what is asked.
    now = time.time()
    actor = pol.Actor(
        user_id=actor.user_id,
        name=actor.name,
        groups=actor.groups,
        role=actor.role,
        last_factor=FactorKind.PASSKEY,
        last_factor_at=now,
    )
    result = pol.explain(policy, actor, session, mode, action, now=now)
    if args.json:
        print(json.dumps({"policy_version": pol.policy_version(text), **result.to_dict()}, indent=2))
    else:
        print(f"policy {source} version {pol.policy_version(text)}")
        print(result.render())
    return EXIT_OK


async def _gateway_url(given: str | None) -> str:
    """--gateway, else the one `rcgate login` stored, else the local default."""
    from gateway.connector.config import load_gateway

    if given:
        return given
    try:
        return (await asyncio.to_thread(load_gateway)).url
    except GatewayError:
        return DEFAULT_GATEWAY_URL


async def _sessions(args: argparse.Namespace) -> int:
    from gateway.connector.control_cli import sessions

    return await sessions(args.action, args.id, await _gateway_url(args.gateway))


async def _links(args: argparse.Namespace) -> int:
    from gateway.connector.control_cli import links

    return await links(
        args.action,
        args.session,
        await _gateway_url(args.gateway),
        mode=args.mode,
        for_user=args.for_user,
        ttl=args.ttl,
        link_id=args.link,
    )


async def _approvals(args: argparse.Namespace) -> int:
    from gateway.connector.approvals_cli import run

    return await run(args.action, args.id, await _gateway_url(args.gateway))


async def _login(args: argparse.Namespace) -> int:
    from gateway.connector.device_login import login

    await login(await _gateway_url(args.gateway), show_qr=not args.no_qr)
    return EXIT_OK


async def _share(args: argparse.Namespace) -> int:
    from gateway.connector.share import share

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise BadRequest("nothing to share: give a command after --, e.g. rcgate share -- bash")
    labels: dict[str, str] = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadRequest(f"--label takes KEY=VALUE, not {item!r}")
        labels[key] = value
    return await share(command, labels=labels, mode=args.mode, assistant=args.assistant)


async def _recordings(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.recording import cli_commands as recordings_cli

    run = functools.partial(
        recordings_cli.run,
        args,
        recordings_dir=settings.recordings_dir,
        data_dir=settings.data_dir,
        retain_days=settings.recordings.retain_days,
    )
    if args.recordings_verb not in recordings_cli.AUDITED:
        return run()
    from gateway.app import services

    async with services(settings) as svc:  # the verbs that write to the gateway's audit log
        loop = asyncio.get_running_loop()

        def audit(type_: str, subject: str, outcome: str, detail: dict[str, Any]) -> None:
            done = asyncio.run_coroutine_threadsafe(
                svc.identity.audit(type_, actor="cli", subject=subject or None, outcome=outcome, **detail),
                loop,
            )
            done.result()

        return await asyncio.to_thread(run, audit=audit)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "hook":  # runs inside the assistant: no settings, no logging set-up, fail closed
        from gateway.hooks.command import main as hook_main

        return hook_main(args.assistant, sys.stdin, sys.stdout, os.environ, stderr=sys.stderr)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # asyncssh logs every connection at INFO; keep the console readable
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
    try:
        settings = settings_from(args)
    except GatewayError as exc:
        print(f"rcgate: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    from gateway.app import run_gateway

    runners: dict[str, Callable[[], Coroutine[Any, Any, int | None]]] = {
        "serve": lambda: run_gateway(settings),
        "demo": lambda: run_gateway(settings, demo=True),
        "users": lambda: _users(args, settings),
        "policy": lambda: _policy(args, settings),
        "login": lambda: _login(args),
        "approvals": lambda: _approvals(args),
        "sessions": lambda: _sessions(args),
        "links": lambda: _links(args),
        "share": lambda: _share(args),
        "recordings": lambda: _recordings(args, settings),
    }
    try:
        rc: int | None = asyncio.run(runners[args.verb]())
    except GatewayError as exc:
        print(f"rcgate: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    return rc if isinstance(rc, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
