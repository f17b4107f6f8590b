"""``rcgate hook claude|codex|gemini``: the command hook that forwards to the gateway, fail closed.

The assistant runs this command for each hook event, with the event's JSON on stdin. It
POSTs that JSON to the gateway and prints the gateway's answer; on **every** error it prints
a deny in the assistant's own format instead, before the assistant's own hook timeout (after
which every assistant would run the tool). Codex CLI and Gemini CLI have only command hooks;
Claude Code can use this too, or its native ``http`` hook against the same endpoint.

HTTP contract (the gateway side is ``gateway.hooks.endpoint.answer_hook``)
--------------------------------------------------------------------------
Request::

    POST {RCGATE_GATEWAY}/api/hooks/{assistant}          assistant: claude | codex | gemini
    Authorization: Bearer {RCGATE_HOOK_TOKEN}             the per-session hook token
    Content-Type: application/json
    X-Rcgate-Hook-Timeout: {RCGATE_HOOK_TIMEOUT_S}        the assistant's hook timeout (s)
    body: the assistant's hook payload, unchanged (at most 1 MiB)

Answer: ``200`` with a JSON object in that assistant's hook output format
(``hookSpecificOutput…`` for Claude Code / Codex, ``{"decision", "reason"}`` for Gemini,
``{}`` for no objection). The gateway holds a call under review and answers at the latest
``SERVER_MARGIN_S`` before the hook timeout. Anything else (no answer, a non-2xx status, a
redirect, a body that is not such an answer) makes this adapter answer deny. No cookie, so
the endpoint is exempt from CSRF; redirects are not followed and proxy variables are ignored
(the token goes to ``RCGATE_GATEWAY`` and nowhere else).

Environment: ``RCGATE_GATEWAY`` (the gateway's base URL), ``RCGATE_HOOK_TOKEN``,
``RCGATE_HOOK_TIMEOUT_S`` (default 600; rcgate writes the same value into the assistant's
settings), ``RCGATE_GATEWAY_CA`` (optional CA bundle for an https gateway).

Exit status: 0 with JSON on stdout for every answer, deny included (Claude Code shows the
model the hook's command line on exit 2). Exit 2 with the reason on stderr, which blocks in
all three assistants, only when no JSON answer can be written (unknown assistant, stdout
broken).
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TextIO

from gateway.hooks.model import (
    EXIT_BLOCK,
    MAX_PAYLOAD_BYTES,
    MAX_RESULT_CHARS,
    Adapter,
    EventKind,
    HookAnswer,
    HookError,
    UnknownAssistant,
    clip,
    fail_closed,
)
from gateway.hooks.registry import adapter_for
from gateway.hooks.timing import HOOK_TIMEOUT_ENV, HOOK_TIMEOUT_HEADER, adapter_budget_s, parse_hook_timeout

GATEWAY_ENV = "RCGATE_GATEWAY"
TOKEN_ENV = "RCGATE_HOOK_TOKEN"  # noqa: S105 - the name of a variable, not a secret
CA_ENV = "RCGATE_GATEWAY_CA"
HOOK_PATH = "/api/hooks/{assistant}"
READ_LIMIT_CHARS = 16 * MAX_PAYLOAD_BYTES  # past this stdin is not even parsed


class _Refused(Exception):
    """The adapter answers deny with this reason."""


@dataclass(slots=True)
class _Outcome:
    """What the worker thread found: the payload (once read) and the answer (once known)."""

    payload: object = None
    answer: HookAnswer | None = None


def hook_url(gateway: str, assistant: str) -> str:
    """``{gateway}/api/hooks/{assistant}``; raises ``_Refused`` unless ``gateway`` is an http(s) URL."""
    parts = urllib.parse.urlsplit(gateway.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise _Refused(f"{GATEWAY_ENV} is not an http(s) URL")
    return gateway.strip().rstrip("/") + HOOK_PATH.format(assistant=assistant)


def main(
    assistant: str, stdin: TextIO, stdout: TextIO, env: Mapping[str, str], *, stderr: TextIO | None = None
) -> int:
    """Answer one hook event of ``assistant``; return the exit status the assistant expects."""
    err = stderr
    try:
        adapter = adapter_for(assistant)
    except UnknownAssistant as exc:
        _say(err, f"rcgate hook: {exc.message}; blocking")
        return EXIT_BLOCK
    hook_timeout = parse_hook_timeout(env.get(HOOK_TIMEOUT_ENV))
    budget = adapter_budget_s(hook_timeout)
    outcome = _Outcome()
    worker = threading.Thread(
        target=_work, args=(adapter, stdin, env, hook_timeout, outcome), name="rcgate-hook", daemon=True
    )
    worker.start()
    worker.join(budget)
    answer = outcome.answer
    if answer is None:  # the worker is still waiting (stdin or the gateway): answer now
        answer = fail_closed(adapter, outcome.payload, f"no answer from the gateway within {budget:.0f} s")
    try:
        stdout.write(json.dumps(answer.body, ensure_ascii=False) + "\n")
        stdout.flush()
    except (OSError, ValueError) as exc:
        _say(err, f"rcgate hook: cannot write the answer ({exc}); blocking")
        return EXIT_BLOCK
    if answer.stderr:
        _say(err, answer.stderr)
    return answer.exit_code


def _say(err: TextIO | None, text: str) -> None:
    if err is None:
        err = sys.stderr
    try:
        err.write(text + "\n")
        err.flush()
    except (OSError, ValueError):
        pass


def _work(adapter: Adapter, stdin: TextIO, env: Mapping[str, str], hook_timeout: int, out: _Outcome) -> None:
    """Read, check, forward, check again; every failure becomes a deny in ``out.answer``."""
    try:
        out.answer = _forward(adapter, stdin, env, hook_timeout, out)
    except _Refused as exc:
        out.answer = fail_closed(adapter, out.payload, str(exc))
    except Exception as exc:  # fail closed on anything unforeseen, naming only its type
        out.answer = fail_closed(adapter, out.payload, f"internal error ({type(exc).__name__})")


def _forward(
    adapter: Adapter, stdin: TextIO, env: Mapping[str, str], hook_timeout: int, out: _Outcome
) -> HookAnswer:
    raw = _read_payload(stdin)
    try:
        payload = json.loads(raw)
    except ValueError:
        raise _Refused("the hook input is not JSON") from None
    if not isinstance(payload, dict):
        raise _Refused("the hook input is not a JSON object")
    out.payload = payload
    try:
        call = adapter.parse(payload)
    except HookError as exc:
        raise _Refused(f"unreadable hook input ({exc.message})") from None
    body = raw.encode("utf-8")
    if len(body) > MAX_PAYLOAD_BYTES:
        body = _trimmed(payload, call.kind)
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise _Refused(f"no hook token ({TOKEN_ENV} is not set): is this assistant run by rcgate share?")
    url = hook_url(env.get(GATEWAY_ENV, ""), adapter.name)
    reply = _post(url, body, token, hook_timeout, env.get(CA_ENV))
    verdict = adapter.read_answer(call.event, reply)
    if verdict is None:
        raise _Refused("the gateway's answer is not a hook answer")
    return replace(adapter.render(call.event, verdict, _reason_of(reply)), body=reply, call=call)


def _read_payload(stdin: TextIO) -> str:
    raw = stdin.read(READ_LIMIT_CHARS + 1)
    if len(raw) > READ_LIMIT_CHARS:
        raise _Refused(f"the hook input is longer than {READ_LIMIT_CHARS} characters")
    return raw


def _trimmed(payload: Mapping[str, Any], kind: EventKind) -> bytes:
    """A result event too large to send, with its ``tool_response`` cut; any other: refused."""
    if kind is EventKind.RESULT:
        response = json.dumps(payload.get("tool_response"), ensure_ascii=False, default=str)
        small = {**payload, "tool_response": clip(response, MAX_RESULT_CHARS), "rcgate_truncated": True}
        body = json.dumps(small, ensure_ascii=False).encode("utf-8")
        if len(body) <= MAX_PAYLOAD_BYTES:
            return body
    raise _Refused(f"the hook input is larger than {MAX_PAYLOAD_BYTES} bytes")


def _reason_of(reply: Mapping[str, Any]) -> str:
    specific = reply.get("hookSpecificOutput")
    if isinstance(specific, dict):
        decision = specific.get("decision")
        if isinstance(decision, dict):
            return str(decision.get("message", ""))
        return str(specific.get("permissionDecisionReason", ""))
    return str(reply.get("reason", ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: the token must not travel anywhere but the configured gateway."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post(url: str, body: bytes, token: str, hook_timeout: int, ca_file: str | None) -> dict[str, Any]:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({}), _NoRedirect()]
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=ca_file or None)
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in hook_url
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            HOOK_TIMEOUT_HEADER: str(hook_timeout),
        },
    )
    try:
        with opener.open(request, timeout=adapter_budget_s(hook_timeout)) as response:
            text = response.read(MAX_PAYLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise _Refused(f"the gateway answered HTTP {exc.code}{_error_message(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise _Refused(f"the gateway is unreachable ({clip(str(why), 200)})") from None
    if len(text) > MAX_PAYLOAD_BYTES:
        raise _Refused("the gateway's answer is too large")
    try:
        reply = json.loads(text)
    except ValueError:
        raise _Refused("the gateway's answer is not JSON") from None
    if not isinstance(reply, dict):
        raise _Refused("the gateway's answer is not a JSON object")
    return reply


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read(4096))
    except (ValueError, OSError):
        return ""
    message = detail.get("message") if isinstance(detail, dict) else None
    return f": {clip(message, 200)}" if isinstance(message, str) and message else ""


if __name__ == "__main__":  # `python -m gateway.hooks.command claude`, until `rcgate hook` is wired
    import os

    name = sys.argv[1] if len(sys.argv) > 1 else ""
    raise SystemExit(main(name, sys.stdin, sys.stdout, os.environ))
