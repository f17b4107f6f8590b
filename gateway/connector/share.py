"""`rcgate share`: run a program in a local PTY and share it through the gateway.

The order matters to the owner: connect first (up to ``FIRST_WELCOME_WAIT_S``) so the link and
its QR code are printed on a clean screen, then start the program in raw mode. If the gateway
is unreachable the program starts anyway and the link is printed when the link comes up; if the
gateway refuses the certificate, nothing starts and the caller gets ``Unauthenticated``.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
from asyncio import FIRST_COMPLETED
from collections.abc import Mapping, Sequence
from pathlib import Path

import segno

from gateway.connector.config import Identity, load_identity
from gateway.connector.link import EXIT_DELIVERY_TIMEOUT_S, GatewayLink, ShareInfo
from gateway.connector.pty import LocalTerminal, PtyRunner, default_terminal
from gateway.core.errors import BadRequest, Unauthenticated
from gateway.hooks.preflight import preflight
from gateway.hooks.settings import HookConfig, wire, write_wiring
from gateway.hooks.timing import DEFAULT_HOOK_TIMEOUT_S, clamp_hook_timeout

FIRST_WELCOME_WAIT_S = 5.0  # how long the program's start waits for the first WELCOME
LINK_SHUTDOWN_GRACE_S = EXIT_DELIVERY_TIMEOUT_S + 5.0  # bound on the link after the program ended
EXIT_COMMAND_NOT_FOUND = 127  # shell conventions
EXIT_COMMAND_NOT_EXECUTABLE = 126


def wire_assistant(
    assistant: str,
    command: Sequence[str],
    ident: Identity,
    hook_token: str,
    session_dir: Path,
    *,
    hook_timeout_s: int = 0,
) -> tuple[list[str], dict[str, str]]:
    """Session-scoped hook settings for ``assistant`` (never the user's own files), checked.

    ``hook_timeout_s``: what the gateway asked for (policy's longest review plus margins), else
    ``timing.DEFAULT_HOOK_TIMEOUT_S``.

    ``session_dir`` is a private folder for this run's files; the caller removes it afterwards.
    Raises ``BadRequest`` when a check finds a way the hooks could fall open (then nothing starts).
    """
    cfg = HookConfig(
        gateway_url=ident.gateway.url,
        hook_timeout_s=clamp_hook_timeout(hook_timeout_s) if hook_timeout_s > 0 else DEFAULT_HOOK_TIMEOUT_S,
        command=(
            str(Path(sys.argv[0]).resolve()) if Path(sys.argv[0]).name == "rcgate" else "rcgate",
            "hook",
        ),
    )
    wiring = wire(assistant, command, cfg, session_dir)
    write_wiring(wiring)
    try:
        version = subprocess.run(  # noqa: S603 - the program the owner asked to share
            [wiring.argv[0], "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BadRequest(f"cannot run {wiring.argv[0]} --version: {exc}") from exc
    docs = [json.loads(text) for path, text in wiring.files.items() if path.suffix == ".json"]
    problems = preflight(assistant, version, wiring.argv, docs[0] if docs else {})
    if problems:
        raise BadRequest("refusing remote control, the hooks could fall open: " + "; ".join(problems))
    env = {**os.environ, **wiring.env, "RCGATE_HOOK_TOKEN": hook_token}
    return list(wiring.argv), env


def render_qr(url: str) -> str:
    """The URL as a compact QR code of Unicode half blocks (two modules per character row)."""
    out = io.StringIO()
    segno.make(url, error="l").terminal(out=out, compact=True)
    return out.getvalue().rstrip("\n")


def print_link(terminal: LocalTerminal, url: str, *, qr: bool = True) -> None:
    """The session link for the owner, with a QR code for a phone when there is room."""
    terminal.notice(f"rcgate: session link (sign-in and a fresh factor required): {url}")
    if qr:
        terminal.notice(render_qr(url))


async def share(
    command: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    mode: str = "view_only",
    config_directory: Path | None = None,
    identity: Identity | None = None,
    terminal: LocalTerminal | None = None,
    assistant: str | None = None,
    forward_signals: bool = True,
) -> int:
    """Share ``command`` until it exits; return its exit status (128 + N after signal N).

    Raises ``NotFound`` / ``Unauthenticated`` / ``BadRequest`` (from ``gateway.core.errors``) when
    there is no usable login; the program is not started then.
    """
    ident = identity if identity is not None else await asyncio.to_thread(load_identity, config_directory)
    term = terminal or default_terminal()
    link = GatewayLink(
        ident,
        ShareInfo(
            host=socket.gethostname(),
            cwd=os.getcwd(),
            command=list(command),
            labels=dict(labels or {}),
            mode=mode,
        ),
        size=term.size(),
        on_notice=term.notice,
    )
    refusal: str | None = None
    code = 0
    async with asyncio.TaskGroup() as tg:
        link_task = tg.create_task(link.run())
        welcomed = tg.create_task(link.welcomed.wait())
        await asyncio.wait([link_task, welcomed], timeout=FIRST_WELCOME_WAIT_S, return_when=FIRST_COMPLETED)
        welcomed.cancel()
        if link_task.done() and not link.welcomed.is_set() and link.failed:
            refusal = link.outcome or "the gateway refused the connector"
        elif assistant is not None and not link.hook_token:
            # Without the session's hook token the assistant's tool calls could not be governed.
            link.stop()
            refusal = (
                f"no session from the gateway yet: {assistant}'s tool hooks cannot be wired, not starting"
            )
        else:
            # The assistant's session-scoped settings live in a private folder, removed at the end
            # (symbolic links to the user's own files in it are removed, never followed).
            session: tempfile.TemporaryDirectory[str] | None = None
            try:
                env: dict[str, str] | None = None
                if assistant is not None:
                    session = tempfile.TemporaryDirectory(
                        prefix="rcgate-session-", ignore_cleanup_errors=True
                    )
                    command, env = await asyncio.to_thread(
                        functools.partial(wire_assistant, hook_timeout_s=link.hook_timeout_s),
                        assistant,
                        command,
                        ident,
                        link.hook_token,
                        Path(session.name),
                    )
                runner = PtyRunner(
                    command,
                    term,
                    on_output=link.push_output,
                    on_resize=link.resize,
                    output_paused=link.output_paused,
                    env=env,
                    forward_signals=forward_signals,
                )
                link.on_input = runner.write_input
                link.on_room = runner.resume_output
                if link.link_url:
                    print_link(term, link.link_url)
                elif not link_task.done():
                    term.notice(
                        "rcgate: the gateway is not reachable yet; the link will be printed once it is"
                    )
                link.on_link = lambda url: print_link(term, url, qr=False)
                code = await _run_program(command, runner, link, term)
                try:
                    await asyncio.wait_for(asyncio.shield(link_task), LINK_SHUTDOWN_GRACE_S)
                except TimeoutError:
                    link_task.cancel()
            finally:
                if session is not None:
                    await asyncio.to_thread(session.cleanup)
    if refusal is not None:
        raise Unauthenticated(refusal)
    return code


async def _run_program(
    command: Sequence[str], runner: PtyRunner, link: GatewayLink, term: LocalTerminal
) -> int:
    """Run the program to its end; tell the link how it ended."""
    try:
        code = await runner.run()
    except FileNotFoundError:
        term.notice(f"rcgate: {shlex.join(command)}: command not found")
        link.stop()
        return EXIT_COMMAND_NOT_FOUND
    except PermissionError:
        term.notice(f"rcgate: {shlex.join(command)}: permission denied")
        link.stop()
        return EXIT_COMMAND_NOT_EXECUTABLE
    link.finish(code)
    return code
