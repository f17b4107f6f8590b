"""The audit stream of a recording read for review: markers classified, facts counted.

``classify`` names the kind of a marker label as the broker writes them (``join bob
(view_only)``, ``approval requested #1 by …``, ``approved #1 (…)``, ``denied …``, ``refused …``,
``mode bob -> privileged: …``, ``end: …``; labels starting ``tool``/``hook`` are tool calls and
those mentioning ``redact`` redactions, for the rooms that add them). ``read_audit`` reads an
``.audit.jsonl`` (partial last line skipped), ``AuditFacts`` counts what the list shows.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

AUDIT_LIMIT = 20_000
COUNTED = (
    "joins",
    "leaves",
    "approval_requests",
    "approvals",
    "denials",
    "refusals",
    "tool_calls",
    "redactions",
)
_KIND_COUNTS = {
    "join": "joins",
    "leave": "leaves",
    "approval_request": "approval_requests",
    "approval": "approvals",
    "denial": "denials",
    "refusal": "refusals",
    "tool_call": "tool_calls",
    "redaction": "redactions",
}
_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("join", re.compile(r"join (?P<name>.+) \((?P<mode>[a-z_]+)\)\Z")),
    ("leave", re.compile(r"leave (?P<name>[^:]+)")),
    ("approval_request", re.compile(r"approval requested\b")),
    ("approval", re.compile(r"approved\b")),
    ("denial", re.compile(r"denied\b")),
    ("allowed", re.compile(r"allowed\b")),
    ("refusal", re.compile(r"refused\b")),
    ("mode", re.compile(r"mode (?P<name>.+) -> (?P<mode>[a-z_]+):")),
    ("end", re.compile(r"end: ")),
    ("tool_call", re.compile(r"(tool|hook)\b", re.IGNORECASE)),
    ("redaction", re.compile(r"redact", re.IGNORECASE)),
)
_PATTERNS = dict(_MARKERS)


def classify(label: str) -> str:
    """The kind of a marker label (``join``, ``approval``, ``denial``, ``tool_call``, … or ``other``)."""
    for kind, pattern in _MARKERS:
        if pattern.match(label):
            return kind
    return "other"


def event_kind(record: dict[str, object]) -> str:
    """The kind of an audit stream record: its marker's kind, or one derived from its type."""
    if record.get("type") == "marker":
        return classify(str(record.get("label", "")))
    kind = str(record.get("type", ""))
    if "tool" in kind or kind.startswith("hook"):
        return "tool_call"
    if "redact" in kind:
        return "redaction"
    return "event"


@dataclass(slots=True)
class AuditFacts:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    participants: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)

    def add(self, record: dict[str, object]) -> None:
        kind = event_kind(record)
        counted = _KIND_COUNTS.get(kind)
        is_marker = record.get("type") == "marker"
        if counted is not None and (is_marker or kind in ("tool_call", "redaction")):
            detail = record.get("detail")
            n = detail.get("count") if isinstance(detail, dict) else None
            self.counts[counted] += n if isinstance(n, int) and kind == "redaction" else 1
        if is_marker and kind in ("join", "mode"):
            m = _PATTERNS[kind].match(str(record.get("label", "")))
            if m is not None:
                if kind == "join" and m.group("name") not in self.participants:
                    self.participants.append(m.group("name"))
                if m.group("mode") not in self.modes:
                    self.modes.append(m.group("mode"))


def read_audit(path: Path, limit: int = AUDIT_LIMIT) -> tuple[list[dict[str, object]], bool]:
    """The records of an ``.audit.jsonl`` (header line skipped), each with its ``kind``."""
    records: list[dict[str, object]] = []
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return records, False
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # a partial last line: still being written
            with contextlib.suppress(ValueError):
                obj = json.loads(raw)
                if not isinstance(obj, dict) or "rcgate_audit" in obj:
                    continue
                t = obj.get("t")
                if isinstance(t, bool) or not isinstance(t, int | float):
                    continue
                if len(records) >= limit:
                    return records, True
                records.append({**obj, "kind": event_kind(obj)})
    return records, False
