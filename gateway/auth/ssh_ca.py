"""The gateway's SSH certificate authority and SSH host key: connector identities without shared secrets.

A connector (`rcgate share`) proves who it is with a short-lived OpenSSH user certificate that
this CA signed for one rcgate user (the only principal) and one workstation (named in the key
id). The SSH endpoint trusts the CA through a single ``cert-authority`` authorized-keys line, so
revocation is by expiry: certificates live hours, not months (asyncssh does not expose a
presented certificate's serial to the server, see RECIPES §5).

Keys live under the gateway's data directory, written once with mode 0600. Loading and creating
them is blocking file I/O: call it at startup or through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import asyncssh

from gateway.core.errors import BadRequest

CA_KEY_FILE = "ssh_user_ca_ed25519"
HOST_KEY_FILE = "ssh_host_ed25519"
USER_CERT_VALID_S = 12 * 3600  # 12 h: a working day; `rcgate login` issues the next one
MAX_USER_CERT_VALID_S = 7 * 24 * 3600  # 7 days: longer lifetimes are refused outright
CLOCK_SKEW_S = 60  # a certificate is valid from a minute before issue, for workstation clock drift
SERIAL_BITS = 64
CONNECTOR_FORCED_COMMAND = "rcgate-connector/1"  # = protocol.connector_wire.EXEC_COMMAND
# Key types a connector may present for signing (the connector itself generates Ed25519).
ACCEPTED_USER_KEY_ALGORITHMS = frozenset(
    {"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}
)
_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_PRINCIPAL_RE = re.compile(r"[^\s,\"'\\]{1,128}")  # no separators that authorized_keys options use
_PRIVATE_FILE_MODE = 0o600
_PRIVATE_DIR_MODE = 0o700


def _write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 atomically (temp file + rename), never world-readable."""
    path.parent.mkdir(mode=_PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_or_create_ed25519(path: Path) -> asyncssh.SSHKey:
    """Read an unencrypted OpenSSH private key, or create an Ed25519 one there (0600)."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            # Tighten instead of failing: the data dir may have been copied with a loose umask.
            path.chmod(_PRIVATE_FILE_MODE)
        try:
            return asyncssh.read_private_key(str(path))
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise BadRequest(f"cannot read SSH key {path}: {exc}") from exc
    key = asyncssh.generate_private_key("ssh-ed25519", comment=path.name)
    _write_private_file(path, key.export_private_key())
    return key


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """The gateway's persistent SSH host key (connectors pin its public half)."""
    return _load_or_create_ed25519(path)


def public_key_line(key: asyncssh.SSHKey) -> str:
    """OpenSSH one-line public key (``ssh-ed25519 AAAA…``) without a comment."""
    data: bytes = key.export_public_key()
    return " ".join(data.decode("ascii").split()[:2])


class SshCertificateAuthority:
    """Signs connector user certificates with the gateway's Ed25519 CA key."""

    def __init__(self, key: asyncssh.SSHKey) -> None:
        self._key = key

    @classmethod
    def load_or_create(cls, path: Path) -> SshCertificateAuthority:
        """Load the CA key from ``path`` (e.g. ``<data_dir>/ssh_user_ca_ed25519``) or create it."""
        return cls(_load_or_create_ed25519(path))

    @property
    def key(self) -> asyncssh.SSHKey:
        """The CA private key (for building asyncssh trust objects; never exported)."""
        return self._key

    def public_key_openssh(self) -> str:
        """The CA's public key, e.g. to show admins or to put into an OpenSSH ``TrustedUserCAKeys``."""
        return public_key_line(self._key)

    def authorized_keys_line(self) -> str:
        """The one line an SSH server needs to trust every certificate this CA signs."""
        return f"cert-authority {self.public_key_openssh()}"

    def authorized_keys(self) -> asyncssh.SSHAuthorizedKeys:
        """``authorized_keys_line`` parsed for asyncssh's ``authorized_client_keys``."""
        return asyncssh.import_authorized_keys(self.authorized_keys_line() + "\n")

    def issue_user_certificate(
        self,
        public_key_openssh: str,
        principal: str,
        host: str,
        *,
        now: float,
        valid_s: int = USER_CERT_VALID_S,
    ) -> str:
        """Sign ``public_key_openssh`` for ``principal`` (the rcgate user name) on ``host``.

        The certificate names only that principal, permits no forwarding, no PTY and no user rc,
        and forces the connector command, so it can do nothing but run ``rcgate share``'s link.

        Args:
            public_key_openssh: the connector's public key, one OpenSSH line.
            principal: the rcgate user name; it must equal the SSH user name at login.
            host: the workstation's host name, recorded in the key id.
            now: the current time (seconds since the epoch); validity starts ``CLOCK_SKEW_S`` earlier.
            valid_s: lifetime in seconds (at most ``MAX_USER_CERT_VALID_S``).

        Returns:
            The certificate in OpenSSH text form (``ssh-ed25519-cert-v01@openssh.com AAAA… key-id``).

        Raises:
            BadRequest: the key, principal, host or lifetime is not acceptable.
        """
        if not _PRINCIPAL_RE.fullmatch(principal):
            raise BadRequest("certificate principal must be a user name without spaces or commas")
        if not _HOST_RE.fullmatch(host):
            raise BadRequest("host name must be 1-253 letters, digits, dots, dashes or underscores")
        if not 0 < valid_s <= MAX_USER_CERT_VALID_S:
            raise BadRequest(f"certificate lifetime must be 1..{MAX_USER_CERT_VALID_S} seconds")
        try:
            user_key = asyncssh.import_public_key(public_key_openssh.strip())
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise BadRequest(f"not an OpenSSH public key: {exc}") from exc
        algorithm = bytes(user_key.algorithm).decode("ascii", "replace")
        if algorithm not in ACCEPTED_USER_KEY_ALGORITHMS:
            raise BadRequest(f"key type {algorithm} is not accepted; use ssh-ed25519")
        if public_key_line(user_key) == self.public_key_openssh():
            raise BadRequest("the CA key cannot be certified as a user key")
        serial = secrets.randbits(SERIAL_BITS)
        issued = int(now)
        cert = self._key.generate_user_certificate(
            user_key,
            key_id=f"rcgate:{principal}@{host}:{serial:016x}",
            serial=serial,
            principals=[principal],
            valid_after=max(0, issued - CLOCK_SKEW_S),
            valid_before=issued + valid_s,
            force_command=CONNECTOR_FORCED_COMMAND,
            permit_x11_forwarding=False,
            permit_agent_forwarding=False,
            permit_port_forwarding=False,
            permit_pty=False,
            permit_user_rc=False,
            comment=f"rcgate {principal}@{host}",
        )
        text: bytes = cert.export_certificate()
        return text.decode("ascii").strip() + "\n"
