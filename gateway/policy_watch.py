"""The I/O edge of the pure policy room: load the policy file, reload it on change, keep versions.

A new version is parsed strictly before it replaces the one in force; a bad file is refused
with its line and field named, the previous version stays, and the error is kept for the admin
page. Every accepted version is copied to ``<data_dir>/policy-versions/`` and audited with a
diff summary; every decision made under it records its version.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from pathlib import Path
from typing import Literal

from gateway.core.clock import Clock
from gateway.core.errors import BadRequest
from gateway.core.models import AuditEvent
from gateway.core.ports import AuditLog
from gateway.policy import PolicyError, parse_policy, policy_version, shipped_policy_text
from gateway.policy.source import LoadedPolicy

log = logging.getLogger("rcgate.policy")
VERSIONS_DIR = "policy-versions"


class PolicyWatcher:
    """Implements ``PolicySource``; ``run()`` polls the file's modification time."""

    def __init__(
        self,
        *,
        file: Path | None,
        shipped: str,
        data_dir: Path,
        audit: AuditLog,
        clock: Clock,
        interval_s: float = 2.0,
    ) -> None:
        self._file = file
        self._shipped = shipped
        self._versions = data_dir / VERSIONS_DIR
        self._audit = audit
        self._clock = clock
        self._interval = interval_s
        self._current: LoadedPolicy | None = None
        self._error: str | None = None
        self._mtime: float | None = None

    def current(self) -> LoadedPolicy:
        if self._current is None:
            raise RuntimeError("policy not loaded")  # load() runs before any server starts
        return self._current

    @property
    def last_error(self) -> str | None:
        return self._error

    @property
    def editable(self) -> bool:
        return self._file is not None

    def _read(self) -> tuple[str, str]:
        if self._file is None:
            return shipped_policy_text(
                "demo" if self._shipped == "demo" else "default"
            ), f"shipped {self._shipped} policy"
        return self._file.read_text(encoding="utf-8"), str(self._file)

    async def load(self) -> LoadedPolicy:
        """The first load: a bad policy stops startup (there is no previous version to keep)."""
        text, source = await asyncio.to_thread(self._read)
        self._mtime = await asyncio.to_thread(self._stat)
        loaded = await self._accept(text, source, who="startup")
        return loaded

    def _stat(self) -> float | None:
        try:
            return self._file.stat().st_mtime if self._file is not None else None
        except OSError:
            return None

    async def _accept(self, text: str, source: str, *, who: str) -> LoadedPolicy:
        policy = parse_policy(text, source)  # PolicyError names line and field
        loaded = LoadedPolicy(policy, policy_version(text), source, text, self._clock.now())
        previous = self._current
        self._current, self._error = loaded, None
        if previous is None or previous.version != loaded.version:
            await asyncio.to_thread(self._keep, loaded)
            added, removed = _diff_counts(previous.text if previous else "", text)
            await self._record(
                "policy.loaded",
                "ok",
                who,
                version=loaded.version,
                source=source,
                previous=previous.version if previous else None,
                added=added,
                removed=removed,
            )
            log.info("policy %s in force (%s)", loaded.version, source)
        return loaded

    def _keep(self, loaded: LoadedPolicy) -> None:
        self._versions.mkdir(parents=True, exist_ok=True, mode=0o700)
        n = len(list(self._versions.glob("*.yaml"))) + 1
        (self._versions / f"{n:04d}-{loaded.version}.yaml").write_text(loaded.text, encoding="utf-8")

    def versions(self) -> list[tuple[str, str]]:
        """(file name, text) of every version kept, oldest first."""
        if not self._versions.exists():
            return []
        return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(self._versions.glob("*.yaml"))]

    async def _record(self, type_: str, outcome: str, who: str, **detail: str | int | None) -> None:
        await self._audit.append(
            AuditEvent.model_validate(
                {
                    "ts": self._clock.now(),
                    "type": type_,
                    "actor": who,
                    "subject": "policy",
                    "outcome": outcome,
                    "detail": detail,
                }
            )
        )

    async def submit(self, text: str, *, who: str) -> LoadedPolicy:
        """An admin's edit: validated first; written to the policy file, then put in force."""
        parse_policy(text, self._file.name if self._file else "policy.yaml")
        if self._file is None:
            raise BadRequest("the gateway runs a shipped policy: set policy.file to edit it here")
        await asyncio.to_thread(self._file.write_text, text, encoding="utf-8")
        self._mtime = await asyncio.to_thread(self._stat)
        return await self._accept(text, str(self._file), who=who)

    async def check_once(self) -> None:
        mtime = await asyncio.to_thread(self._stat)
        if mtime is None or mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            text, source = await asyncio.to_thread(self._read)
            await self._accept(text, source, who="file")
        except (PolicyError, BadRequest, OSError) as exc:
            self._error = exc.message if isinstance(exc, BadRequest) else str(exc)
            log.error("policy file refused, the previous version stays: %s", self._error)
            await self._record("policy.refused", "fail", "file", reason=self._error[:500])

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check_once()


def read_policy(file: Path | None, shipped: str) -> tuple[str, str]:
    """(text, source): the policy file, else the shipped ``demo`` or ``default`` policy. Blocking."""
    if file is None:
        name: Literal["default", "demo"] = "demo" if shipped == "demo" else "default"
        return shipped_policy_text(name), f"shipped {name} policy"
    try:
        return file.read_text(encoding="utf-8"), str(file)
    except OSError as exc:
        raise BadRequest(f"cannot read the policy file {file}: {exc}") from exc


def _diff_counts(old: str, new: str) -> tuple[int, int]:
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed
