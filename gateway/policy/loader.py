"""Policy files: YAML text in, a validated ``Policy`` out, or an error naming file, line and field.

The caller reads the file (or the admin page posts the text) and passes the text with a
source name; this module does no file I/O of its own except reading the two policies that
ship inside the package (``shipped_policy_text``). YAML is parsed with PyYAML's safe loader;
the composed node tree keeps line numbers, so every pydantic error ``loc`` is mapped back to
the line it came from::

    policy.yaml:14: command_rules[2].match.regex: bad regular expression: missing ), …
    policy.yaml:9: grants[0]: unknown key 'actoin' (did you mean 'action'?)

YAML's own traps are refused too: duplicate keys (PyYAML would silently keep the last),
alias bombs (more than ``MAX_NODES`` nodes once aliases are expanded), files over
``MAX_POLICY_BYTES``.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gateway.core.errors import BadRequest
from gateway.policy.model import Policy

MAX_POLICY_BYTES = 1024 * 1024  # 1 MiB
MAX_NODES = 50_000  # YAML nodes after alias expansion
MAX_PROBLEMS = 20
VERSION_HEX_CHARS = 16  # 64 bits of SHA-256: names a policy version in every audit event

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy file: where (1-based line, dotted field) and what."""

    line: int | None
    field: str
    message: str

    def render(self, source: str) -> str:
        """``source:line: field: message``, leaving out what is unknown."""
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PolicyError(BadRequest):
    """A policy file that cannot be used; ``problems`` lists each error with its line."""

    code = "policy_invalid"

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(p.render(source) for p in problems))
        self.source = source
        self.problems = tuple(problems)

    def to_dict(self) -> dict[str, object]:
        problems = [{"line": p.line, "field": p.field, "message": p.message} for p in self.problems]
        return {**super().to_dict(), "problems": problems}


def policy_version(text: str) -> str:
    """The version id of a policy text: a SHA-256 prefix, recorded with every decision."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:VERSION_HEX_CHARS]


def export_json_schema() -> dict[str, object]:
    """The JSON Schema of the policy file format (committed as ``docs/policy.schema.json``)."""
    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Policy.model_json_schema(),
    }
    schema["title"] = "rcgate policy file"
    return schema


def shipped_policy_text(name: Literal["default", "demo"]) -> str:
    """The text of a policy shipped in the package: ``default`` (safe) or ``demo`` (all three modes)."""
    return resources.files("gateway.policy").joinpath(f"{name}_policy.yaml").read_text(encoding="utf-8")


def parse_policy(text: str, source: str) -> Policy:
    """Parse and validate a policy file's text.

    Args:
        source: the name used in error messages, usually the file name.

    Raises:
        PolicyError: not YAML, not a mapping, or not a valid policy; every problem has a line.
    """
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise PolicyError(source, [Problem(None, "", f"larger than {MAX_POLICY_BYTES} bytes")])
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as e:  # the reader refuses non-printable characters up front
        first = str(e).splitlines()[0]
        raise PolicyError(source, [Problem(None, "", f"not valid YAML: {first}")]) from None
    try:
        root = loader.get_single_node()
        if root is None:
            raise PolicyError(
                source, [Problem(None, "", "the policy is empty; it needs at least `version: 1`")]
            )
        _check_tree(root, source)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(source, [Problem(line, "", f"not valid YAML: {e.problem or e.context}")]) from None
    except yaml.YAMLError as e:
        raise PolicyError(source, [Problem(None, "", f"not valid YAML: {e}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise PolicyError(
            source,
            [Problem(root.start_mark.line + 1, "", "a policy is a mapping of keys (version: 1, grants: …)")],
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as e:
        problems = [_problem(err, root) for err in e.errors(include_url=False)[:MAX_PROBLEMS]]
        raise PolicyError(source, sorted(problems, key=lambda p: (p.line or 0, p.field))) from None


def _check_tree(root: yaml.Node, source: str) -> None:
    """Refuse duplicate keys and alias bombs before anything is built from the tree."""
    seen = 0
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise PolicyError(
                source, [Problem(None, "", f"more than {MAX_NODES} values (after YAML aliases)")]
            )
        if isinstance(node, yaml.MappingNode):
            first_line: dict[object, int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else repr(key)
                if name in first_line:
                    raise PolicyError(
                        source,
                        [
                            Problem(
                                key.start_mark.line + 1,
                                _dotted(loc),
                                f"duplicate key '{name}' (first at line {first_line[name]})",
                            )
                        ],
                    )
                first_line[name] = key.start_mark.line + 1
                stack.append((value, (*loc, str(name))))
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*loc, n)) for n, item in enumerate(node.value)]


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(root: yaml.Node, loc: Loc) -> tuple[yaml.Node, yaml.Node | None, bool]:
    """The deepest node on ``loc``, the key node that led to it, and whether all of ``loc`` was found."""
    node, key_node = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((kv for kv in node.value if getattr(kv[0], "value", None) == str(part)), None)
            if found is None:
                return node, key_node, False
            key_node, node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node, key_node = node.value[part], None
        else:
            return node, key_node, False
    return node, key_node, True


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The policy model class that the mapping at ``loc`` is validated as, for key suggestions."""
    model: type[BaseModel] | None = Policy
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return model


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _problem(err: ErrorDetails, root: yaml.Node) -> Problem:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    message = err["msg"].removeprefix("Value error, ")
    if kind == "duplicate_rule_id":
        loc = tuple(int(p) if p.isdigit() else p for p in str(ctx["at"]).split("."))
    if kind == "extra_forbidden":
        parent, key = loc[:-1], str(loc[-1])
        _, key_node, _ = _walk(root, loc)
        model = _model_at(parent)
        close = difflib.get_close_matches(key, list(model.model_fields) if model else [], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return Problem(_line(key_node), _dotted(parent), f"unknown key '{key}'{hint}")
    if kind == "missing":
        node, _, _ = _walk(root, loc[:-1])
        return Problem(_line(node), _dotted(loc[:-1]), f"missing key '{loc[-1]}'")
    node, _, _ = _walk(root, loc)
    if kind == "unknown_mode" and "key" in ctx:
        candidates = node.value if isinstance(node, yaml.SequenceNode) else []
        if isinstance(node, yaml.MappingNode):
            candidates = [k for k, _ in node.value]
        hit = next((c for c in candidates if getattr(c, "value", None) == ctx["key"]), None)
        return Problem(_line(hit or node), _dotted(loc), message)
    return Problem(_line(node), _dotted(loc), message)
