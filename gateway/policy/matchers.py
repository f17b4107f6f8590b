"""Does this part of a policy fit these facts? Small pure predicates the engine composes.

Each answers one question (is the actor one of ``who``, does the session fit, does a rule
match one command, is a path outside the repository) and never decides an outcome.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping

from gateway.policy.decisions import Approvers
from gateway.policy.facts import Actor, SessionFacts, ToolCall
from gateway.policy.model import SessionMatch, Who
from gateway.policy.patterns import MAX_EVAL_CHARS, glob_match
from gateway.policy.rules import CommandMatch, PermissionModeRule, ToolMatch, ToolRule
from gateway.policy.shell import SYSTEM_BIN_DIRS, Command

# Keys under which assistants put file paths in a tool's input (Claude Write/Edit/Read use
# file_path, NotebookEdit notebook_path, Glob/Grep path; Gemini write_file/replace file_path,
# read_many_files paths).
PATH_KEYS = ("file_path", "path", "notebook_path", "absolute_path", "dir_path", "directory")
PATH_LIST_KEYS = ("paths",)


def _named(names: tuple[str, ...], user_id: str, name: str) -> bool:
    return user_id in names or name in names


def actor_is(who: Who, actor: Actor, session: SessionFacts) -> bool:
    """Whether the actor is anyone ``who`` names."""
    return (
        who.everyone
        or (who.owner and actor.user_id == session.owner_id)
        or _named(who.users, actor.user_id, actor.name)
        or bool(set(who.groups) & set(actor.groups))
        or actor.role in who.roles
    )


def session_fits(match: SessionMatch, session: SessionFacts) -> bool:
    """Whether the session meets every condition of ``match`` (labels, owners, hosts, assistants)."""
    for label, pattern in match.labels.items():
        value = session.labels.get(label)
        if value is None or not glob_match(pattern, value):
            return False
    if match.owners and not _named(match.owners, session.owner_id, session.owner_name):
        return False
    if match.hosts and not any(glob_match(h, session.host) for h in match.hosts):
        return False
    return not match.assistants or session.assistant in match.assistants


def approver_fits(approvers: Approvers, approver: Actor, session: SessionFacts) -> bool:
    """Whether ``approver`` is one of ``approvers`` for this session (self-approval is checked elsewhere)."""
    return (
        (approvers.owner and approver.user_id == session.owner_id)
        or _named(approvers.users, approver.user_id, approver.name)
        or bool(set(approvers.groups) & set(approver.groups))
        or approver.role in approvers.roles
    )


def _prefix_matches(prefix: tuple[str, ...], argv: tuple[str, ...]) -> bool:
    if len(argv) < len(prefix):
        return False
    first = prefix[0]
    folder, _, base = first.rpartition("/")
    if folder in SYSTEM_BIN_DIRS:
        first = base  # commands name programs in system bin folders by base name; so do rules
    return argv[0] == first and argv[1 : len(prefix)] == prefix[1:]


def command_matches(match: CommandMatch | ToolMatch, command: Command) -> bool:
    """Whether the command matcher of a command rule or a tool rule fits one command."""
    if isinstance(match, CommandMatch):
        regex, prefix = match.regex, match.argv_prefix
        if match.any:
            return True
    else:
        regex, prefix = match.command_regex, match.command_argv_prefix
    if prefix is not None and not _prefix_matches(prefix, command.argv):
        return False
    if regex is not None:
        text = command.text
        return len(text) <= MAX_EVAL_CHARS and regex.search(text) is not None
    return True


def tool_command(tool_input: Mapping[str, object]) -> str | None:
    """The shell text of ``input.command``: a string as is, an argv list quoted; None if absent.

    Raises:
        TypeError: the command is neither text nor a list of text (the engine holds it for review).
    """
    command = tool_input.get("command")
    if command is None:
        return None
    if isinstance(command, str):
        return command
    if isinstance(command, list) and all(isinstance(a, str) for a in command):
        return shlex.join(command)  # Codex may report an argv list
    raise TypeError("the command input is neither text nor a list of words")


def tool_paths(tool_input: Mapping[str, object]) -> list[str]:
    """Every file path a tool's input names, under the keys assistants use."""
    paths = [v for k in PATH_KEYS if isinstance(v := tool_input.get(k), str)]
    for k in PATH_LIST_KEYS:
        values = tool_input.get(k)
        if isinstance(values, list):
            paths += [v for v in values if isinstance(v, str)]
    return paths


def absolute_path(path: str, repo_root: str | None) -> str | None:
    """``path`` made absolute against ``repo_root`` and normalised lexically (no filesystem access).

    None when it cannot be resolved: relative without a repository, ``~`` paths, NUL bytes.
    Symbolic links are not followed, so a link inside the repository that points out of it
    counts as inside.
    """
    if "\x00" in path or path.startswith("~"):
        return None
    if not path.startswith("/"):
        if repo_root is None or not repo_root.startswith("/"):
            return None
        path = posixpath.join(repo_root, path)
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/")  # normpath keeps a leading "//"


def is_outside_repo(path: str, repo_root: str | None) -> bool:
    """Whether ``path`` resolves outside ``repo_root``; True when either cannot be resolved."""
    resolved = absolute_path(path, repo_root)
    root = absolute_path(repo_root, None) if repo_root is not None else None
    if resolved is None or root is None:
        return True
    return not (resolved == root or resolved.startswith(root.rstrip("/") + "/"))


def tool_input_matches(
    match: ToolMatch, command: Command | None, tool_input: Mapping[str, object], session: SessionFacts
) -> bool:
    """Whether every matcher of ``match`` fits: the command ones on ``command``, the path ones on the input.

    A rule with a command matcher never fits a call without a command; ``path_outside_repo``
    fits when any path is outside (or unresolvable), and not when the input names no path
    (Glob and Grep then search the working folder).
    """
    if match.has_command_matcher and (command is None or not command_matches(match, command)):
        return False
    paths = tool_paths(tool_input)
    if match.path_outside_repo and not any(is_outside_repo(p, session.repo_root) for p in paths):
        return False
    if match.path_glob is not None:
        resolved = [absolute_path(p, session.repo_root) for p in paths]
        return any(r is not None and glob_match(match.path_glob, r) for r in resolved)
    return True


def _applies(rule: ToolRule | PermissionModeRule, call: ToolCall, session: SessionFacts) -> bool:
    return (
        rule.assistant in ("any", call.assistant)
        and any(glob_match(t, call.tool) for t in rule.tool)
        and (rule.when == "always" or session.remote_participants > 0)
    )


def tool_rule_applies(rule: ToolRule, call: ToolCall, session: SessionFacts) -> bool:
    """Whether a tool rule covers this assistant, tool and moment (its input matchers aside)."""
    return _applies(rule, call, session)


def permission_rule_applies(rule: PermissionModeRule, call: ToolCall, session: SessionFacts) -> bool:
    """Whether a permission-mode rule covers this call (an unknown permission mode never matches)."""
    mode = session.permission_mode
    return (
        mode is not None
        and any(glob_match(p, mode) for p in rule.permission_mode)
        and _applies(rule, call, session)
    )
