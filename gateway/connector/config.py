"""Where `rcgate share` keeps its identity: key, certificate and gateway endpoint, all private.

Layout (``$XDG_CONFIG_HOME/rcgate/``, default ``~/.config/rcgate/``; directory 0700, files 0600)::

    id_ed25519            the connector's private key (created once, never leaves the machine)
    id_ed25519.pub        its public half (what `rcgate login` sends to be certified)
    id_ed25519-cert.pub   the short-lived certificate the gateway CA issued (OpenSSH text)
    gateway.json          the gateway's URL, SSH endpoint, pinned host key, and the user name

The helpers are small blocking file operations: call them before the event loop starts or
through ``asyncio.to_thread``. ``rcgate login`` (the device flow) uses ``ensure_key``,
``save_certificate`` and ``save_gateway``; ``rcgate share`` uses ``load_identity``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from asyncssh.public_key import CERT_TYPE_USER, SSHOpenSSHCertificate
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.core.errors import BadRequest, NotFound, Unauthenticated

APP_DIR_NAME = "rcgate"
KEY_FILE = "id_ed25519"
PUBLIC_KEY_FILE = "id_ed25519.pub"
CERT_FILE = "id_ed25519-cert.pub"
GATEWAY_FILE = "gateway.json"
DIR_MODE = 0o700
FILE_MODE = 0o600
DEFAULT_SSH_PORT = 2222


class GatewayInfo(BaseModel):
    """``gateway.json``: which gateway this workstation logged in to, and as whom."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1)  # https://gateway.example (the web UI and API)
    ssh_host: str = Field(min_length=1)
    ssh_port: int = Field(DEFAULT_SSH_PORT, ge=1, le=65535)
    user: str = Field(min_length=1)  # rcgate user name = SSH user name = certificate principal
    # The gateway's SSH host key (one OpenSSH line), learnt over HTTPS at login. None disables
    # host key checking; `rcgate login` should always fill it in.
    ssh_host_key: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """Everything the link needs to log in (loaded by ``load_identity``)."""

    gateway: GatewayInfo
    key: asyncssh.SSHKey
    certificate: asyncssh.SSHCertificate


def config_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/rcgate`` (XDG Base Directory spec: relative values are ignored)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / APP_DIR_NAME


def _ensure_dir(directory: Path) -> None:
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        directory.chmod(DIR_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file (in a 0700 directory)."""
    _ensure_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def ensure_key(directory: Path | None = None) -> str:
    """Create the connector key pair if missing; return the public key (one OpenSSH line)."""
    d = directory or config_dir()
    key_path = d / KEY_FILE
    if key_path.exists():
        key = asyncssh.read_private_key(str(key_path))
    else:
        key = asyncssh.generate_private_key("ssh-ed25519", comment="rcgate connector")
        write_private(key_path, key.export_private_key())
    public: bytes = key.export_public_key()
    write_private(d / PUBLIC_KEY_FILE, public)
    return public.decode("ascii").strip()


def save_certificate(cert_openssh: str, directory: Path | None = None) -> Path:
    """Store the certificate `rcgate login` received; refuses text that is not a certificate."""
    try:
        asyncssh.import_certificate(cert_openssh.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise BadRequest(f"not an OpenSSH certificate: {exc}") from exc
    path = (directory or config_dir()) / CERT_FILE
    write_private(path, cert_openssh.strip().encode("ascii") + b"\n")
    return path


def save_gateway(info: GatewayInfo, directory: Path | None = None) -> Path:
    path = (directory or config_dir()) / GATEWAY_FILE
    write_private(path, (info.model_dump_json(indent=2) + "\n").encode())
    return path


def load_gateway(directory: Path | None = None) -> GatewayInfo:
    path = (directory or config_dir()) / GATEWAY_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"no gateway configured ({path} is missing): run `rcgate login`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BadRequest(f"cannot read {path}: {exc}") from exc
    try:
        return GatewayInfo.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(f"{path} is not a valid gateway file: {exc.error_count()} problem(s)") from exc


def load_identity(directory: Path | None = None) -> Identity:
    """Gateway info, key and certificate, checked for presence, match and expiry.

    Raises ``NotFound`` (not logged in), ``Unauthenticated`` (certificate expired or not for this
    key: run `rcgate login` again) or ``BadRequest`` (unreadable files).
    """
    d = directory or config_dir()
    gateway = load_gateway(d)
    key_path, cert_path = d / KEY_FILE, d / CERT_FILE
    if not key_path.exists() or not cert_path.exists():
        raise NotFound(f"no connector certificate in {d}: run `rcgate login`")
    try:
        key = asyncssh.read_private_key(str(key_path))
        cert = asyncssh.read_certificate(str(cert_path))
    except (asyncssh.KeyImportError, ValueError, OSError) as exc:
        raise BadRequest(f"cannot read the connector key or certificate in {d}: {exc}") from exc
    if not isinstance(cert, SSHOpenSSHCertificate):
        raise BadRequest(f"{cert_path} is not an OpenSSH user certificate")
    if cert.key.public_data != key.public_data:
        raise Unauthenticated("the stored certificate is for another key: run `rcgate login`")
    try:
        cert.validate(CERT_TYPE_USER, gateway.user)  # validity window and principal
    except ValueError as exc:
        raise Unauthenticated(f"the connector certificate is not usable ({exc}): run `rcgate login`") from exc
    return Identity(gateway=gateway, key=key, certificate=cert)
