"""The sans-IO rule, checked: pure modules import no asyncio, socket, time or I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "gateway"
FORBIDDEN = {
    "asyncio",
    "socket",
    "time",
    "aiohttp",
    "asyncssh",
    "redis",
    "sqlite3",
    "subprocess",
    "threading",
}
# Whole rooms that are pure, and pure modules inside rooms that also hold adapters.
PURE_ROOMS = ["core", "protocol", "policy"]
PURE_MODULES = [
    "auth/totp.py",
    "auth/lockout.py",
    "auth/freshness.py",
    "sessions/state.py",
    "sessions/scrollback.py",
    "sessions/keys.py",
    "recording/asciicast.py",
    "recording/chain.py",
]


def pure_files() -> list[Path]:
    files = [p for room in PURE_ROOMS for p in (ROOT / room).rglob("*.py")]
    files += [ROOT / m for m in PURE_MODULES if (ROOT / m).exists()]
    return sorted(files)


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_there_are_pure_modules_to_check() -> None:
    assert len(pure_files()) >= 8


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_no_io_or_clock(path: Path) -> None:
    bad = imported_roots(path) & FORBIDDEN
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: pass time and I/O in from the edge"


def test_no_grab_bag_modules() -> None:
    names = {p.name for p in ROOT.rglob("*.py")}
    assert not names & {"utils.py", "helpers.py", "common.py", "misc.py"}
