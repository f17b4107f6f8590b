"""``rcgate recordings``: verify, pubkey, list, export. Parsing, printing and exit codes only.

    rcgate recordings verify ID|FILE [--pubkey KEY] [--json]
    rcgate recordings pubkey [--pem]
    rcgate recordings list [--pubkey KEY] [--no-verify] [--json]
    rcgate recordings export ID -o BUNDLE.tar.gz [--allow-unfinished]

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
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.core.errors import BadRequest, Conflict, GatewayError, NotFound
from gateway.recording import archive
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
        help="verify, list and export session recordings",
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
) -> int:
    """Run the parsed ``recordings`` action; returns the exit code (errors are printed)."""
    out = out or sys.stdout
    err = err or sys.stderr
    places = Places(getattr(args, "recordings_dir", None) or recordings_dir, data_dir)
    try:
        verb = args.recordings_verb
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
    codes = [s.exit_code for s in summaries if s.exit_code is not None]
    code = EXIT_TAMPERED if EXIT_TAMPERED in codes else EXIT_INTACT
    if as_json:
        print(json.dumps([s.to_dict() for s in summaries], indent=2), file=out)
        return code
    print(
        f"{'ID':<28} {'OWNER':<14} {'HOST':<16} {'START (UTC)':<20} {'DURATION':>9} {'SIZE':>10}  STATE",
        file=out,
    )
    for s in summaries:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.started)) if s.started else "-"
        print(
            f"{s.session_id:<28} {s.owner[:14]:<14} {s.host[:16]:<16} {start:<20} "
            f"{_duration(s.duration):>9} {_size(s.size):>10}  {s.state}",
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
