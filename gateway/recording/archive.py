"""Recordings at rest: find one by id (safely), read it with its sidecars or from a bundle,
verify it, summarise it for a list, and export it as a bundle that verifies on its own.

The I/O shell around the pure ``chain.verify``; the CLI (``cli_commands``) only prints what
these functions return. Ids are never joined into paths unchecked: an id must match
``recorder.SAFE_ID`` (letters, digits, ``_``, ``-``), so ``../x``, ``a/b`` and ``/etc/passwd``
are refused before any file is touched, and a found file must lie inside the recordings folder.

A bundle (``<id>.tar.gz``) holds, under ``<id>/``: the ``.cast``, ``.chain``, ``.audit.jsonl``,
``.audit.chain``, the public key (``recording_ed25519.pub``, OpenSSH line) and a
``README.txt``. It is read without extracting anything to disk.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.recording.asciicast import CastFormatError, Header, parse_header
from gateway.recording.chain import (
    STREAM_AUDIT,
    STREAM_CAST,
    ChainFormatError,
    Checkpoint,
    Outcome,
    Report,
    exit_code_of,
    fingerprint,
    parse_checkpoint,
    split_lines,
    verify,
)
from gateway.recording.keys import public_key_openssh
from gateway.recording.recorder import SAFE_ID, sidecars_of

BUNDLE_SUFFIXES = (".tar.gz", ".tgz")
PUBLIC_KEY_MEMBER = "recording_ed25519.pub"
README_MEMBER = "README.txt"
MAX_MEMBER_BYTES = 4 * 1024**3  # a bundle member larger than this is refused (read into memory)
MAX_MEMBERS = 32
LIVE_QUIET_S = 60.0  # an unfinished recording written to this recently belongs to a live session


@dataclass(frozen=True, slots=True)
class RecordingData:
    """A recording's bytes: the cast, its sidecars (None when missing), and a shipped key."""

    session_id: str  # from the file name
    source: str  # what to show the user: a path, or ``bundle.tar.gz:<id>/<id>.cast``
    cast: bytes
    chain: bytes | None
    audit: bytes | None
    audit_chain: bytes | None
    bundled_key: bytes | None = None  # the public key inside a bundle (not a trust anchor)
    # The chain must belong to ``session_id`` (looked up by id, or in a bundle); a .cast named
    # by the user may have been renamed, and its report says which session it is.
    check_id: bool = True


def check_id(text: str) -> str:
    """``text`` if it is a recording id; ``BadRequest`` for anything path-like."""
    if not SAFE_ID.fullmatch(text):
        raise BadRequest(
            f"not a recording id: {text[:80]!r} (ids are letters, digits, '_' and '-'; give a .cast or "
            ".tar.gz file by its path instead)"
        )
    return text


def is_bundle(path: Path) -> bool:
    return path.name.endswith(BUNDLE_SUFFIXES)


def find_recording(root: Path, recording_id: str) -> Path:
    """``<root>/<yyyy>/<mm>/<id>.cast``; ``BadRequest`` for a bad id, ``NotFound`` if absent."""
    check_id(recording_id)
    real_root = root.resolve()
    found = [
        p
        for p in sorted(root.glob(f"[0-9][0-9][0-9][0-9]/[0-9][0-9]/{recording_id}.cast"))
        if p.is_file() and p.resolve().is_relative_to(real_root)
    ]
    if not found:
        raise NotFound(f"no recording {recording_id} under {root}")
    if len(found) > 1:
        raise Conflict(f"recording id {recording_id} is in several months: {', '.join(map(str, found))}")
    return found[0]


def iter_recordings(root: Path) -> Iterator[Path]:
    """Every ``.cast`` under ``root/<yyyy>/<mm>/``, oldest month first."""
    for p in sorted(root.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.cast")):
        if p.is_file() and SAFE_ID.fullmatch(p.stem):
            yield p


def _read_optional(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def read_recording(cast_path: Path, *, check_id: bool = True) -> RecordingData:
    """A ``.cast`` and whichever of its sidecars exist."""
    if cast_path.suffix != ".cast":
        raise BadRequest(f"not a recording: {cast_path} (expected a .cast file or a .tar.gz bundle)")
    try:
        cast = cast_path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no such file: {cast_path}") from None
    except IsADirectoryError:
        raise BadRequest(f"not a file: {cast_path}") from None
    side = sidecars_of(cast_path)
    return RecordingData(
        session_id=cast_path.stem,
        source=str(cast_path),
        cast=cast,
        chain=_read_optional(side.chain),
        audit=_read_optional(side.audit),
        audit_chain=_read_optional(side.audit_chain),
        check_id=check_id,
    )


def read_bundle(path: Path) -> RecordingData:
    """The recording inside an export bundle, read in memory (nothing is extracted)."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_MEMBERS:
                    raise BadRequest(f"{path}: more than {MAX_MEMBERS} files: not an rcgate bundle")
                if not member.isfile():
                    continue  # folders; links and devices are never followed
                name = PurePosixPath(member.name).name
                if name in members:
                    raise BadRequest(f"{path}: {name} appears twice: not an rcgate bundle")
                if member.size > MAX_MEMBER_BYTES:
                    raise BadRequest(f"{path}: {name} is larger than {MAX_MEMBER_BYTES} bytes")
                stream = tar.extractfile(member)
                if stream is not None:
                    members[name] = stream.read()
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BadRequest(f"{path}: not a readable .tar.gz bundle: {exc}") from exc
    casts = [n for n in members if n.endswith(".cast") and SAFE_ID.fullmatch(n.removesuffix(".cast"))]
    if len(casts) != 1:
        raise BadRequest(f"{path}: expected exactly one <id>.cast in the bundle, found {len(casts)}")
    sid = casts[0].removesuffix(".cast")
    return RecordingData(
        session_id=sid,
        source=f"{path}:{sid}/{sid}.cast",
        cast=members[casts[0]],
        chain=members.get(f"{sid}.chain"),
        audit=members.get(f"{sid}.audit.jsonl"),
        audit_chain=members.get(f"{sid}.audit.chain"),
        bundled_key=members.get(PUBLIC_KEY_MEMBER),
    )


def verify_data(data: RecordingData, public_key: Ed25519PublicKey) -> list[Report]:
    """Reports for the cast stream and the audit stream (both must verify)."""
    expected = data.session_id if data.check_id else None
    cast = verify(data.cast, data.chain, public_key, stream=STREAM_CAST, expected_session_id=expected)
    if data.audit is None and data.audit_chain is None:
        audit = Report(
            Outcome.MISSING_CHAIN,
            "no audit stream beside the recording",
            stream=STREAM_AUDIT,
            key_id=fingerprint(public_key),
        )
    else:
        audit = verify(
            data.audit or b"",
            data.audit_chain,
            public_key,
            stream=STREAM_AUDIT,
            expected_session_id=expected or cast.session_id,
        )
    return [cast, audit]


def last_checkpoint(chain: bytes | None) -> Checkpoint | None:
    """The last complete checkpoint of a chain, unverified (to tell finished from live)."""
    if not chain:
        return None
    lines, _ = split_lines(chain)
    for raw in reversed(lines):
        if raw.strip():
            try:
                return parse_checkpoint(raw)[0]
            except ChainFormatError:
                return None
    return None


# --- list -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """One line of ``rcgate recordings list``."""

    session_id: str
    path: Path
    owner: str
    host: str
    started: int | None  # wall clock, seconds since the epoch
    duration: float | None  # seconds (signed end time, or how far it is verified)
    size: int
    state: str
    exit_code: int | None  # None when not verified

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.session_id,
            "path": str(self.path),
            "owner": self.owner,
            "host": self.host,
            "started": self.started,
            "duration": self.duration,
            "size": self.size,
            "state": self.state,
            "exit_code": self.exit_code,
        }


def _header_of(cast: bytes) -> Header | None:
    first = cast.split(b"\n", 1)[0]
    try:
        return parse_header(first.decode("utf-8"))
    except (CastFormatError, UnicodeDecodeError):
        return None


def state_of(reports: list[Report]) -> str:
    """A short verdict for a list: ``intact``, ``open (unsigned tail)``, ``TAMPERED: …``."""
    code = exit_code_of(reports)
    if code == 0:
        return "intact"
    if code == 2:
        return "open (unsigned tail)"
    worst = next(r for r in reports if r.tampered)
    if worst.outcome is Outcome.MISSING_CHAIN:
        return f"NO CHAIN ({worst.stream})"
    return f"TAMPERED: {worst.outcome.value} ({worst.stream})"


def summarize(cast_path: Path, public_key: Ed25519PublicKey | None) -> Summary:
    """Header facts and, when a key is given, the verification state of one recording."""
    data = read_recording(cast_path)
    header = _header_of(data.cast)
    meta = header.rcgate if header is not None else None
    reports = verify_data(data, public_key) if public_key is not None else None
    last = last_checkpoint(data.chain)
    duration = reports[0].verified_t if reports else (last.t if last is not None else None)
    return Summary(
        session_id=data.session_id,
        path=cast_path,
        owner=meta.owner_name if meta is not None else "?",
        host=meta.host if meta is not None else "?",
        started=header.timestamp if header is not None else None,
        duration=duration,
        size=len(data.cast),
        state=state_of(reports) if reports is not None else "not verified (no key)",
        exit_code=exit_code_of(reports) if reports is not None else None,
    )


# --- export -----------------------------------------------------------------------------------


def check_finished(cast_path: Path, chain: bytes | None, *, now: float, allow_unfinished: bool) -> None:
    """``Conflict`` unless the recording has its final checkpoint (or may be exported unfinished)."""
    last = last_checkpoint(chain)
    if last is not None and last.final:
        return
    sid = cast_path.stem
    if not allow_unfinished:
        raise Conflict(
            f"recording {sid} has no final checkpoint: its session may still be live (or the gateway "
            "stopped before closing it). Export it after the session ends; to export what a crashed "
            "gateway left, pass --allow-unfinished (it will verify as 'unsigned tail')."
        )
    side = sidecars_of(cast_path)
    newest = max(p.stat().st_mtime for p in (cast_path, *side) if p.exists())
    if now - newest < LIVE_QUIET_S:
        raise Conflict(
            f"recording {sid} was written {max(now - newest, 0):.0f} s ago and has no final checkpoint: "
            "its session is live. Export it after the session ends."
        )


def _readme(data: RecordingData, public_key: Ed25519PublicKey, reports: list[Report], now: float) -> str:
    sid = data.session_id
    results = "\n".join(f"  {r.stream:<5}  {r.outcome.value}: {r.message}" for r in reports)
    return f"""rcgate recording bundle: {sid}

Files
  {sid}.cast          the terminal recording (asciicast v2: `asciinema play {sid}.cast`)
  {sid}.chain         signed checkpoints of the recording's hash chain (JSON lines)
  {sid}.audit.jsonl   the session's audit stream (JSON lines)
  {sid}.audit.chain   signed checkpoints of the audit stream
  {PUBLIC_KEY_MEMBER}  the gateway's recording public key (OpenSSH line)

Signed by key {fingerprint(public_key)}
  Compare this fingerprint with the one the gateway publishes (`rcgate recordings pubkey`
  on the gateway, or `ssh-keygen -lf {PUBLIC_KEY_MEMBER}`): a bundle can carry any key, so
  only a key you obtained independently proves who signed it.

Verify
  rcgate recordings verify {sid}.tar.gz --pubkey trusted-gateway-key.pub
  or, extracted:  rcgate recordings verify {sid}/{sid}.cast --pubkey trusted-gateway-key.pub
  Exit codes: 0 intact, 1 tampered, 2 unsigned tail only, 3 usage or not found.
  The format is described in docs/recording-format.md of rcgate.

Verification at export (unix time {now:.0f})
{results}
"""


def export_bundle(
    cast_path: Path,
    out: Path,
    public_key: Ed25519PublicKey,
    *,
    now: float,
    allow_unfinished: bool = False,
) -> list[Report]:
    """Write ``out`` (a new .tar.gz, mode 0600) and return the verification of what it holds.

    ``Conflict`` for a live or unfinished recording (see ``check_finished``) or an existing
    ``out``. The bundle is built from one read of each file, so it holds what was verified.
    """
    data = read_recording(cast_path)
    check_finished(cast_path, data.chain, now=now, allow_unfinished=allow_unfinished)
    reports = verify_data(data, public_key)
    sid = data.session_id
    files: list[tuple[str, bytes]] = [(f"{sid}.cast", data.cast)]
    for name, content in (
        (f"{sid}.chain", data.chain),
        (f"{sid}.audit.jsonl", data.audit),
        (f"{sid}.audit.chain", data.audit_chain),
    ):
        if content is not None:
            files.append((name, content))
    files.append((PUBLIC_KEY_MEMBER, (public_key_openssh(public_key) + "\n").encode("ascii")))
    files.append((README_MEMBER, _readme(data, public_key, reports, now).encode("utf-8")))
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise Conflict(f"{out} exists: choose another name") from None
    try:
        with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
            folder = tarfile.TarInfo(sid)
            folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o700, int(now)
            tar.addfile(folder)
            for name, content in files:
                info = tarfile.TarInfo(f"{sid}/{name}")
                info.size, info.mode, info.mtime = len(content), 0o600, int(now)
                tar.addfile(info, io.BytesIO(content))
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return reports


def report_json(target: str, key_id: str, key_source: str, reports: list[Report]) -> str:
    return json.dumps(
        {
            "target": target,
            "key": key_id,
            "key_source": key_source,
            "exit_code": exit_code_of(reports),
            "reports": [r.to_dict() for r in reports],
        },
        indent=2,
    )
