"""``rcgate recordings``: verify, pubkey, list, export, search, play, hold, release, prune, reindex.
Parsing, printing and exit codes only.

    rcgate recordings verify ID|FILE [--pubkey KEY] [--json]
    rcgate recordings pubkey [--pem]
    rcgate recordings list [--pubkey KEY] [--no-verify] [--json]
    rcgate recordings export ID -o BUNDLE.tar.gz [--allow-unfinished]
    rcgate recordings search QUERY [--id ID] [--limit N] [--json]
    rcgate recordings play ID|FILE [--speed X] [--idle-limit S] [--from S]
    rcgate recordings hold ID [--reason TEXT] | release ID
    rcgate recordings prune [--days N] [--dry-run]
    rcgate recordings reindex ID|--all

``ID`` is a session id, looked up as ``<recordings_dir>/<yyyy>/<mm>/<ID>.cast``; anything that
is not an id (``../x``, ``/etc/passwd``, ``a/b``) is refused. ``FILE`` is a ``.cast`` (its
sidecars are read from beside it) or an export bundle (``.tar.gz``/``.tgz``).

The key that verifies: ``--pubkey`` (PEM or ``ssh-ed25519`` line), else the gateway's own key
from the data directory, else, for a bundle only, the key inside the bundle (with a warning:
a bundle can carry any key).

Exit codes: 0 intact, 1 tampered (or the action failed, e.g. export of a live recording),
2 unsigned tail only (verified up to the last checkpoint; live or crashed), 3 usage error or
not found.

``add_parser`` builds the subcommand on the ``rcgate`` parser and ``run`` executes it; the
``gateway.cli`` wiring is one call to each.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.core.errors import BadRequest, Conflict, GatewayError, NotFound
from gateway.recording import archive, retention
from gateway.recording.catalog import Catalog
from gateway.recording.chain import (
    EXIT_INTACT,
    EXIT_TAMPERED,
    EXIT_USAGE,
    Report,
    exit_code_of,
    fingerprint,
)
from gateway.recording.keys import (
    key_path,
    load_or_create_signing_key,
    load_signing_key,
    parse_public_key,
    public_key_openssh,
    public_key_pem,
)
from gateway.recording.search import MAX_QUERY_CHARS, SearchLimits
from gateway.recording.seekindex import CastSeeker, SeekIndex, build_seek_index, seek_path_of
from gateway.recording.termsafe import TerminalSanitizer

# The verbs that write to the gateway's audit log (``run``'s ``audit``): the CLI wiring opens
# the store for them.
AUDITED = frozenset({"search", "hold", "release", "prune"})
SEARCH_INDEX_DIR = "search-index"  # under the data directory, shared with the gateway
# What play writes at the end (and on Ctrl-C): leave the alternate screen, reset attributes,
# show the cursor, wrap at the margin, no scroll region.
TERMINAL_RESTORE = "\x1b[0m\x1b[?1049l\x1b[r\x1b[?25h\x1b[?7h\x1b[?6l\x1b[4l\r\n"

_RESULT = {0: "intact", 1: "TAMPERED", 2: "unsigned tail (verified up to the last checkpoint)"}


class _UsageParser(argparse.ArgumentParser):
    """Usage errors of a ``recordings`` action exit 3 (2 means "unsigned tail" here)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``recordings`` to the ``rcgate`` verbs."""
    p = verbs.add_parser(
        "recordings",
        help="verify, list, search, play, export, hold and prune session recordings",
        description="Check that recordings are intact (signed hash chain), list them, export a bundle "
        "that verifies on another machine. Exit codes: 0 intact, 1 tampered or failed, 2 unsigned "
        "tail only, 3 usage or not found.",
    )
    actions = p.add_subparsers(
        dest="recordings_verb", metavar="ACTION", required=True, parser_class=_UsageParser
    )

    def common(a: argparse.ArgumentParser, *, pubkey: bool = True) -> None:
        g = a.add_argument_group("settings")
        g.add_argument("--config", type=Path, metavar="FILE", help="settings file (YAML)")
        g.add_argument("--data-dir", type=Path, metavar="DIR", help="where the recording key lives (./data)")
        g.add_argument(
            "--recordings-dir", type=Path, metavar="DIR", help="recordings folder (settings: recordings_dir)"
        )
        if pubkey:
            a.add_argument(
                "--pubkey",
                type=Path,
                metavar="KEY",
                help="public key to verify with (PEM or ssh-ed25519 line; default: the gateway's own)",
            )

    v = actions.add_parser(
        "verify",
        help="check a recording's chain and signatures",
        description="Verify ID (a session id) or FILE (a .cast with its sidecars, or a .tar.gz bundle).",
    )
    v.add_argument("target", metavar="ID|FILE")
    v.add_argument("--json", action="store_true", help="machine-readable output")
    common(v)

    k = actions.add_parser(
        "pubkey",
        help="print the public key that verifies recordings",
        description="Print the gateway's recording public key (an OpenSSH ssh-ed25519 line; --pem for "
        "PEM). Creates the key in the data directory if the gateway has not yet.",
    )
    k.add_argument("--pem", action="store_true", help="PEM SubjectPublicKeyInfo instead of OpenSSH")
    common(k, pubkey=False)

    ls = actions.add_parser("list", help="list recordings", description="List recordings, verified.")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--no-verify", action="store_true", help="skip verification (faster)")
    common(ls)

    ex = actions.add_parser(
        "export",
        help="write a bundle that verifies on its own",
        description="Write ID's .cast, chain, audit stream and its chain, the public key and a README "
        "into a .tar.gz that `rcgate recordings verify` checks on any machine. A live recording "
        "(no final checkpoint) is refused.",
    )
    ex.add_argument("recording_id", metavar="ID")
    ex.add_argument("-o", "--output", type=Path, required=True, metavar="BUNDLE.tar.gz")
    ex.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="export a recording without a final checkpoint that has not been written for a minute "
        "(left by a crashed gateway)",
    )
    common(ex, pubkey=False)

    se = actions.add_parser(
        "search",
        help="full-text search over what was shown and typed",
        description="Search every recording (or one, --id) for QUERY: a plain substring, any case, "
        f"at most {MAX_QUERY_CHARS} characters (never a regular expression). The same search as the "
        "web workbench, through the same indexes.",
    )
    se.add_argument("query", metavar="QUERY")
    se.add_argument("--id", dest="recording_id", metavar="ID", help="search this recording only")
    se.add_argument("--limit", type=int, default=100, metavar="N", help="at most N hits (100, up to 500)")
    se.add_argument("--json", action="store_true", help="machine-readable output")
    common(se, pubkey=False)

    pl = actions.add_parser(
        "play",
        help="replay a recording in this terminal, dangerous escape sequences removed",
        description="Write ID's (or FILE's) output to this terminal in real time. Clipboard writes "
        "(OSC 52), title changes, links (OSC 8), every other OSC/DCS/APC/PM string and anything "
        "that makes the terminal answer are removed; colours and cursor movement are kept.",
    )
    pl.add_argument("target", metavar="ID|FILE")
    pl.add_argument("--speed", type=float, default=1.0, metavar="X", help="playback speed (default 1)")
    pl.add_argument(
        "--idle-limit", type=float, default=None, metavar="S", help="shorten pauses longer than S seconds"
    )
    pl.add_argument(
        "--from",
        dest="start",
        type=float,
        default=0.0,
        metavar="S",
        help="start S seconds in (through the seek index)",
    )
    common(pl, pubkey=False)

    ho = actions.add_parser(
        "hold", help="put a recording on legal hold", description="Exempt ID from retention until released."
    )
    ho.add_argument("recording_id", metavar="ID")
    ho.add_argument("--reason", default="", metavar="TEXT", help="why (shown in the list and audited)")
    common(ho, pubkey=False)

    re_ = actions.add_parser(
        "release", help="lift a legal hold", description="Let retention apply to ID again."
    )
    re_.add_argument("recording_id", metavar="ID")
    common(re_, pubkey=False)

    pr = actions.add_parser(
        "prune",
        help="delete recordings older than the retention period (once)",
        description="Delete recordings older than recordings.retain_days (or --days): every file "
        "and the search index, each deletion audited. Held and live recordings are kept.",
    )
    pr.add_argument("--days", type=float, default=None, metavar="N", help="retention in days")
    pr.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    common(pr, pubkey=False)

    ri = actions.add_parser(
        "reindex",
        help="rebuild the seek index of a recording",
        description="Rebuild ID's seek index (keyframes for seeking) from its .cast and chain, "
        "signed with the gateway's recording key; --all: every finished recording without a "
        "complete index.",
    )
    ri.add_argument("recording_id", metavar="ID", nargs="?")
    ri.add_argument("--all", action="store_true", help="every recording")
    common(ri, pubkey=False)


AuditSink = retention.AuditSink


@dataclass(frozen=True, slots=True)
class Places:
    """Where recordings and the recording key are."""

    recordings_dir: Path
    data_dir: Path


def run(
    args: argparse.Namespace,
    *,
    recordings_dir: Path,
    data_dir: Path,
    out: TextIO | None = None,
    err: TextIO | None = None,
    audit: AuditSink | None = None,
    retain_days: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run the parsed ``recordings`` action; returns the exit code (errors are printed).

    ``audit`` receives the events of the verbs in ``AUDITED`` (the gateway's audit log).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    places = Places(getattr(args, "recordings_dir", None) or recordings_dir, data_dir)
    sink: AuditSink = audit or (lambda *_: None)
    try:
        verb = args.recordings_verb
        if verb == "search":
            return search_command(
                args.query, places, recording_id=args.recording_id, limit=args.limit,
                as_json=args.json, out=out, audit=sink,
            )  # fmt: skip
        if verb == "play":
            return play_command(
                args.target, places, speed=args.speed, idle_limit=args.idle_limit, start=args.start,
                out=out, err=err, sleep=sleep,
            )  # fmt: skip
        if verb == "hold":
            return hold_command(args.recording_id, args.reason, places, out=out, audit=sink)
        if verb == "release":
            return release_command(args.recording_id, places, out=out, audit=sink)
        if verb == "prune":
            days = args.days if args.days is not None else retain_days
            return prune_command(places, days, dry_run=args.dry_run, out=out, audit=sink)
        if verb == "reindex":
            return reindex_command(args.recording_id, places, every=args.all, out=out, err=err)
        if verb == "verify":
            return verify_command(
                args.target, places, pubkey=args.pubkey, as_json=args.json, out=out, err=err
            )
        if verb == "pubkey":
            return pubkey_command(places, pem=args.pem, out=out, err=err)
        if verb == "list":
            return list_command(
                places, pubkey=args.pubkey, as_json=args.json, check=not args.no_verify, out=out, err=err
            )
        if verb == "export":
            return export_command(
                args.recording_id,
                args.output,
                places,
                allow_unfinished=args.allow_unfinished,
                now=time.time(),
                out=out,
                err=err,
            )
        raise BadRequest(f"unknown action {verb!r}")
    except (BadRequest, NotFound) as exc:
        print(f"rcgate recordings: {exc.message}", file=err)
        return EXIT_USAGE
    except GatewayError as exc:
        print(f"rcgate recordings: {exc.message}", file=err)
        return EXIT_TAMPERED
    except OSError as exc:
        print(f"rcgate recordings: {exc}", file=err)
        return EXIT_TAMPERED


# --- keys ---------------------------------------------------------------------------------------


def _given_key(pubkey: Path) -> Ed25519PublicKey:
    try:
        return parse_public_key(pubkey.read_bytes())
    except FileNotFoundError:
        raise NotFound(f"no such key file: {pubkey}") from None
    except IsADirectoryError:
        raise BadRequest(f"not a key file: {pubkey}") from None


def gateway_key(data_dir: Path) -> Ed25519PublicKey | None:
    """The public half of the data directory's recording key, if there is one."""
    path = key_path(data_dir)
    if not path.exists():
        return None
    return load_signing_key(path).public_key()


def trusted_key(places: Places, pubkey: Path | None) -> tuple[Ed25519PublicKey, str] | None:
    """The key to verify with and where it came from (``--pubkey`` first, then the data dir)."""
    if pubkey is not None:
        return _given_key(pubkey), str(pubkey)
    own = gateway_key(places.data_dir)
    if own is not None:
        return own, f"the gateway's key in {key_path(places.data_dir)}"
    return None


# --- verify -------------------------------------------------------------------------------------


def _load_target(target: str, root: Path) -> archive.RecordingData:
    path = Path(target)
    if archive.is_bundle(path):
        return archive.read_bundle(path)
    if target.endswith(".cast"):
        return archive.read_recording(path, check_id=False)
    return archive.read_recording(archive.find_recording(root, target))


def verify_command(
    target: str,
    places: Places,
    *,
    pubkey: Path | None,
    as_json: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    data = _load_target(target, places.recordings_dir)
    chosen = trusted_key(places, pubkey)
    if chosen is None and data.bundled_key is not None:
        key = parse_public_key(data.bundled_key)
        source = "the key inside the bundle"
        print(
            f"warning: verified with the key shipped inside the bundle ({fingerprint(key)}). That shows "
            "the bundle is consistent, not who signed it: compare the fingerprint with the gateway's "
            "(`rcgate recordings pubkey`), or pass --pubkey with a key you trust.",
            file=err,
        )
    elif chosen is None:
        raise BadRequest(
            "no public key to verify with: pass --pubkey KEY (print it on the gateway with "
            "`rcgate recordings pubkey`), or run this where the gateway's data directory is"
        )
    else:
        key, source = chosen
        if data.bundled_key is not None and parse_public_key(data.bundled_key) != key:
            print(
                f"note: the bundle carries another key ({fingerprint(parse_public_key(data.bundled_key))}); "
                f"verifying with {source}",
                file=err,
            )
    reports = archive.verify_data(data, key)
    code = exit_code_of(reports)
    if as_json:
        print(archive.report_json(data.source, fingerprint(key), source, reports), file=out)
        return code
    print(f"recording {reports[0].session_id or data.session_id} ({data.source})", file=out)
    print(f"  key    {fingerprint(key)} ({source})", file=out)
    for r in reports:
        print(f"  {r.stream:<6} {r.outcome.value.upper():<16} {r.message}", file=out)
        for note in r.notes:
            print(f"  {'':<6} {'':<16} note: {note}", file=out)
    print(f"result: {_RESULT[code]} (exit {code})", file=out)
    return code


# --- pubkey -------------------------------------------------------------------------------------


def pubkey_command(places: Places, *, pem: bool, out: TextIO, err: TextIO) -> int:
    path = key_path(places.data_dir)
    key = load_or_create_signing_key(path).public_key()
    print(public_key_pem(key).rstrip("\n") if pem else public_key_openssh(key), file=out)
    print(f"rcgate: recording key {fingerprint(key)} ({path})", file=err)
    return EXIT_INTACT


# --- list ---------------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def list_command(
    places: Places, *, pubkey: Path | None, as_json: bool, check: bool, out: TextIO, err: TextIO
) -> int:
    chosen = trusted_key(places, pubkey) if check else None
    if check and chosen is None:
        print("rcgate: no recording key here: listing without verification (pass --pubkey)", file=err)
    key = chosen[0] if chosen is not None else None
    summaries = [archive.summarize(p, key) for p in archive.iter_recordings(places.recordings_dir)]
    holds = {s.session_id: retention.hold_of(s.path) for s in summaries}
    codes = [s.exit_code for s in summaries if s.exit_code is not None]
    code = EXIT_TAMPERED if EXIT_TAMPERED in codes else EXIT_INTACT
    if as_json:
        rows = []
        for s in summaries:
            hold = holds[s.session_id]
            rows.append({**s.to_dict(), "hold": hold.to_dict() if hold is not None else None})
        print(json.dumps(rows, indent=2), file=out)
        return code
    print(
        f"{'ID':<28} {'OWNER':<14} {'HOST':<16} {'START (UTC)':<20} {'DURATION':>9} {'SIZE':>10}  STATE",
        file=out,
    )
    for s in summaries:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.started)) if s.started else "-"
        print(
            f"{s.session_id:<28} {s.owner[:14]:<14} {s.host[:16]:<16} {start:<20} "
            f"{_duration(s.duration):>9} {_size(s.size):>10}  {s.state}{_hold_note(holds[s.session_id])}",
            file=out,
        )
    if not summaries:
        print(f"(no recordings under {places.recordings_dir})", file=out)
    return code


# --- export -------------------------------------------------------------------------------------


def export_command(
    recording_id: str,
    output: Path,
    places: Places,
    *,
    allow_unfinished: bool,
    now: float,
    out: TextIO,
    err: TextIO,
) -> int:
    cast_path = archive.find_recording(places.recordings_dir, archive.check_id(recording_id))
    key = gateway_key(places.data_dir)
    if key is None:
        raise NotFound(f"no recording key in {places.data_dir}: export runs where the gateway's data is")
    if not output.name.endswith(archive.BUNDLE_SUFFIXES):
        raise BadRequest(f"the bundle name must end in .tar.gz: {output}")
    try:
        reports: list[Report] = archive.export_bundle(
            cast_path, output, key, now=now, allow_unfinished=allow_unfinished
        )
    except Conflict as exc:
        print(f"rcgate recordings: refused: {exc.message}", file=err)
        return EXIT_TAMPERED
    code = exit_code_of(reports)
    print(f"wrote {output} ({recording_id}, signed by {fingerprint(key)})", file=out)
    for r in reports:
        print(f"  {r.stream:<6} {r.outcome.value.upper():<16} {r.message}", file=out)
    if code:
        print(f"warning: the exported recording is not intact: {_RESULT[code]}", file=err)
    print(f"check it anywhere with: rcgate recordings verify {output} --pubkey <gateway key>", file=out)
    return code


def _hold_note(hold: retention.Hold | None) -> str:
    if hold is None:
        return ""
    return f"; HELD ({_printable(hold.reason)})" if hold.reason else "; HELD"


def _printable(text: str) -> str:
    """``text`` with every control character written out (``\\x1b``): nothing acts on the terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}.{int((seconds % 1) * 10)}"


# --- search -------------------------------------------------------------------------------------

_KIND = {"o": "shown", "i": "typed", "m": "marker"}


def search_command(
    query: str,
    places: Places,
    *,
    recording_id: str | None,
    limit: int,
    as_json: bool,
    out: TextIO,
    audit: AuditSink,
) -> int:
    if recording_id is not None:
        archive.check_id(recording_id)
    if not 1 <= limit <= 500:
        raise BadRequest("--limit: between 1 and 500")
    catalog = Catalog(places.recordings_dir, None, index_dir=places.data_dir / SEARCH_INDEX_DIR)
    result = catalog.search(query, recording_id, SearchLimits(max_hits=limit))
    audit("recording.searched", recording_id or "", "ok", {"chars": len(query), "hits": len(result.hits)})
    if as_json:
        print(json.dumps({"query": query, "id": recording_id, **result.to_dict()}, indent=2), file=out)
        return EXIT_INTACT
    print(f"{'ID':<28} {'TIME':>11}  {'KIND':<6}  SNIPPET", file=out)
    for h in result.hits:
        snippet = f"{_printable(h.before)}[{_printable(h.match)}]{_printable(h.after)}"
        print(
            f"{h.recording_id:<28} {_clock(h.t):>11}  {_KIND.get(h.stream, h.stream):<6}  {snippet}", file=out
        )
    note = f"; stopped early ({result.reason})" if result.truncated else ""
    print(f"{len(result.hits)} hit(s) in {result.searched} recording(s){note}", file=out)
    return EXIT_INTACT


# --- play ---------------------------------------------------------------------------------------


def play_target(target: str, root: Path) -> Path:
    """The ``.cast`` to play: a path ending in ``.cast``, else an id (``BadRequest`` if not one)."""
    if target.endswith(".cast"):
        path = Path(target)
        if not path.is_file():
            raise NotFound(f"no such file: {target}")
        return path
    return archive.find_recording(root, archive.check_id(target))


def play_command(
    target: str,
    places: Places,
    *,
    speed: float,
    idle_limit: float | None,
    start: float,
    out: TextIO,
    err: TextIO,
    sleep: Callable[[float], None],
) -> int:
    if not speed > 0:
        raise BadRequest("--speed must be more than 0")
    if idle_limit is not None and idle_limit < 0:
        raise BadRequest("--idle-limit must be 0 or more")
    if start < 0:
        raise BadRequest("--from must be 0 or more")
    cast_path = play_target(target, places.recordings_dir)
    key = gateway_key(places.data_dir)
    seeker = CastSeeker(cast_path, key, SeekIndex.load(seek_path_of(cast_path)))
    begin = seeker.start(start)
    safe = TerminalSanitizer()
    clock = begin.base_t  # the recording's time of what was written last
    first = True
    try:
        for chunk in seeker.chunks(begin):
            lines = chunk.split(b"\n")
            if first:
                lines = lines[1:]  # the header
                first = False
            for raw in lines:
                if not raw:
                    continue
                try:
                    event = json.loads(raw)
                    when, code, data = event
                    when = float(when) + begin.base_t
                except (ValueError, TypeError):
                    continue
                if code != "o" or not isinstance(data, str):
                    continue
                if when > start:  # before ``start``: fast-forward, no waiting
                    pause = when - max(clock, start)
                    if idle_limit is not None:
                        pause = min(pause, idle_limit)
                    if pause > 0:
                        out.flush()
                        sleep(pause / speed)
                clock = max(clock, when)
                out.write(safe.feed(data))
    finally:
        out.write(TERMINAL_RESTORE)
        out.flush()
    return EXIT_INTACT


# --- hold, release, prune -----------------------------------------------------------------------


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def hold_command(recording_id: str, reason: str, places: Places, *, out: TextIO, audit: AuditSink) -> int:
    _, hold, new = retention.place_hold(
        places.recordings_dir, archive.check_id(recording_id), reason=reason, by=_who(), now=time.time()
    )
    audit("recording.held", recording_id, "ok", {"reason": hold.reason, "by": hold.by, "new": new})
    print(f"{recording_id}: on hold{f' ({_printable(hold.reason)})' if hold.reason else ''}", file=out)
    return EXIT_INTACT


def release_command(recording_id: str, places: Places, *, out: TextIO, audit: AuditSink) -> int:
    _, hold = retention.release_hold(places.recordings_dir, archive.check_id(recording_id))
    audit("recording.released", recording_id, "ok", {"reason": hold.reason, "held_by": hold.by})
    print(f"{recording_id}: hold released (retention applies again)", file=out)
    return EXIT_INTACT


def prune_command(places: Places, days: float | None, *, dry_run: bool, out: TextIO, audit: AuditSink) -> int:
    if days is None:
        raise BadRequest(
            "no retention period: set recordings.retain_days (RCGATE_RECORDINGS__RETAIN_DAYS) or pass --days"
        )
    if not days > 0:
        raise BadRequest("--days must be more than 0")
    result = retention.prune(
        places.recordings_dir,
        days,
        now=time.time(),
        audit=audit,
        index_dirs=[places.data_dir / SEARCH_INDEX_DIR],
        dry_run=dry_run,
    )
    verb = "would delete" if dry_run else "deleted"
    for c in result.deleted:
        print(f"{verb} {c.id} ({c.age_s / retention.DAY_S:.1f} days old, {_size(c.size)})", file=out)
    print(
        f"{len(result.deleted)} recording(s) {verb}; kept {result.kept_held} on hold and "
        f"{result.kept_live} live",
        file=out,
    )
    return EXIT_INTACT


# --- reindex ------------------------------------------------------------------------------------


def reindex_command(
    recording_id: str | None, places: Places, *, every: bool, out: TextIO, err: TextIO
) -> int:
    if every == (recording_id is not None):
        raise BadRequest("give one recording ID or --all")
    path = key_path(places.data_dir)
    if not path.exists():
        raise NotFound(f"no recording key in {places.data_dir}: reindex runs where the gateway's data is")
    from gateway.recording.chain import Ed25519Signer

    signer = Ed25519Signer(load_signing_key(path))
    if recording_id is not None:
        casts = [archive.find_recording(places.recordings_dir, archive.check_id(recording_id))]
    else:
        casts = list(archive.iter_recordings(places.recordings_dir))
    now = time.time()
    for cast_path in casts:
        c = retention.examine(cast_path, now=now)
        if c.live:
            print(f"{cast_path.stem}: live, skipped (its index is being written)", file=err)
            continue
        result = build_seek_index(cast_path, signer)
        note = f"; {result.note}" if result.note else ""
        print(f"{cast_path.stem}: {result.keyframes} keyframe(s) over {result.lines} lines{note}", file=out)
    return EXIT_INTACT
