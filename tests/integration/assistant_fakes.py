"""State-free fake model APIs that make the real assistant CLIs call their shell tool, offline.

After ``../shared/reference/assistant-fakes/`` (RECIPES-ASSISTANTS.md has the protocols). Each
reply depends on the request body alone, so side calls and retries cannot put it out of step:

* the last turn carries a tool result: a text reply (``done``);
* the shell tool is offered: a call of it running ``command``;
* anything else: the text ``ok`` (Gemini's JSON-mode routing call gets a small JSON object).

``model_app(assistant, command, log)`` returns the aiohttp app for ``claude`` (Anthropic
Messages, SSE), ``codex`` (OpenAI Responses, SSE) or ``gemini`` (Gemini v1beta, SSE). Every
request is appended to ``log``; unknown paths get a logged 404.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

COMMAND = web.AppKey("command", str)
LOG = web.AppKey("log", list)
_ids = itertools.count(1)


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


# --- Anthropic Messages (Claude Code) -------------------------------------------------------------


def _anthropic_blocks(body: dict[str, Any], command: str) -> tuple[list[dict[str, Any]], str]:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    last = users[-1].get("content") if users else None
    if isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last):
        return [{"type": "text", "text": "done"}], "end_turn"
    if any(isinstance(t, dict) and t.get("name") == "Bash" for t in body.get("tools") or []):
        tool = {"command": command, "description": "Remove the build directory"}
        call = {"type": "tool_use", "id": f"toolu_fake{next(_ids):06d}", "name": "Bash", "input": tool}
        return [{"type": "text", "text": "I will clean the build directory."}, call], "tool_use"
    return [{"type": "text", "text": "ok"}], "end_turn"


async def _anthropic(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    request.app[LOG].append({"path": request.path_qs, "body": body})
    blocks, stop = _anthropic_blocks(body, request.app[COMMAND])
    usage = {"input_tokens": 10, "output_tokens": 5}
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    start = {"id": f"msg_{next(_ids)}", "type": "message", "role": "assistant", "model": body.get("model")}
    start |= {"content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    await resp.write(_sse("message_start", {"type": "message_start", "message": start}))
    for i, b in enumerate(blocks):
        first: dict[str, Any]
        delta: dict[str, Any]
        if b["type"] == "text":
            first, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": b["text"]}
        else:
            first = {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(b["input"])}
        start_block = {"type": "content_block_start", "index": i, "content_block": first}
        await resp.write(_sse("content_block_start", start_block))
        await resp.write(
            _sse("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta})
        )
        await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    end = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage}
    await resp.write(_sse("message_delta", end))
    await resp.write(_sse("message_stop", {"type": "message_stop"}))
    await resp.write_eof()
    return resp


# --- OpenAI Responses (Codex CLI) -----------------------------------------------------------------


def _openai_items(body: dict[str, Any], command: str) -> list[dict[str, Any]]:
    items = body.get("input") or []
    last = items[-1] if items else {}
    text = "ok"
    if isinstance(last, dict) and last.get("type") in ("function_call_output", "custom_tool_call_output"):
        text = "done"
    elif any(isinstance(t, dict) and t.get("name") == "exec_command" for t in body.get("tools") or []):
        args = json.dumps({"cmd": command})
        return [
            {
                "type": "function_call",
                "name": "exec_command",
                "call_id": f"call_fake{next(_ids):06d}",
                "arguments": args,
            }
        ]
    return [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    ]


async def _openai(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    request.app[LOG].append({"path": request.path_qs, "body": body})
    out = _openai_items(body, request.app[COMMAND])
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5}
    usage |= {"output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15}
    base = {"id": f"resp_{next(_ids)}", "object": "response", "created_at": 0, "model": body.get("model")}
    base |= {"status": "in_progress", "output": []}
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    seq = itertools.count()
    await resp.write(
        _sse("response.created", {"type": "response.created", "sequence_number": next(seq), "response": base})
    )
    done = []
    for i, planned in enumerate(out):
        item = {**planned, "id": f"item_{next(_ids)}", "status": "completed"}
        added: dict[str, Any] = {"type": "response.output_item.added", "sequence_number": next(seq)}
        added |= {"output_index": i, "item": {**item, "status": "in_progress"}}
        await resp.write(_sse("response.output_item.added", added))
        finished: dict[str, Any] = {"type": "response.output_item.done", "sequence_number": next(seq)}
        finished |= {"output_index": i, "item": item}
        await resp.write(_sse("response.output_item.done", finished))
        done.append(item)
    completed = {**base, "status": "completed", "output": done, "usage": usage}
    await resp.write(
        _sse(
            "response.completed",
            {"type": "response.completed", "sequence_number": next(seq), "response": completed},
        )
    )
    await resp.write_eof()
    return resp


# --- Gemini v1beta (Gemini CLI) -------------------------------------------------------------------


def _gemini_parts(body: dict[str, Any], command: str) -> list[dict[str, Any]]:
    contents = body.get("contents") or []
    last = contents[-1] if contents else {}
    if any("functionResponse" in p for p in last.get("parts") or []):
        return [{"text": "done"}]
    if (body.get("generationConfig") or {}).get("responseMimeType") == "application/json":
        route = {"model_choice": "flash", "complexity_score": 1, "complexity_reasoning": "fake"}
        return [{"text": json.dumps({"next_speaker": "user", "reasoning": "fake", **route})}]
    declared = [d.get("name") for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    if "run_shell_command" in declared:
        args = {"command": command, "description": "Remove the build directory"}
        return [{"functionCall": {"name": "run_shell_command", "args": args}}]
    return [{"text": "ok"}]


async def _gemini(request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["target"].partition(":")
    body = await request.json()
    request.app[LOG].append({"path": request.path_qs, "body": body})
    if method == "countTokens":
        return web.json_response({"totalTokens": 10})
    parts = _gemini_parts(body, request.app[COMMAND])
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    answer: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
    answer["usageMetadata"] = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
    if method != "streamGenerateContent":
        return web.json_response(answer)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(("data: " + json.dumps(answer) + "\r\n\r\n").encode())
    await resp.write_eof()
    return resp


async def _not_found(request: web.Request) -> web.Response:
    request.app[LOG].append({"path": request.path_qs, "status": 404})
    return web.json_response({"error": {"message": "fake: no such route"}}, status=404)


def model_app(assistant: str, command: str, log: list[dict[str, Any]]) -> web.Application:
    """The fake model API ``assistant`` talks to."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[COMMAND], app[LOG] = command, log
    if assistant == "claude":
        app.router.add_post("/v1/messages", _anthropic)
    elif assistant == "codex":
        app.router.add_post("/v1/responses", _openai)
    else:
        app.router.add_post("/{ver}/models/{target}", _gemini)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
