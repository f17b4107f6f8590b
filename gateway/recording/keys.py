"""The recording signing key: Ed25519, in the data directory, and its public half for verifiers.

The private key lives in ``<data_dir>/recording_ed25519`` (PKCS#8 PEM, unencrypted, mode 0600,
created on first use, never overwritten). Only its public half leaves the machine, in one of
two forms, both accepted by ``rcgate recordings verify --pubkey``:

* OpenSSH one-line (the default of ``rcgate recordings pubkey``)::

      ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI… rcgate-recordings

  ``ssh-keygen -lf`` on that line prints the same ``SHA256:…`` fingerprint that every
  checkpoint carries in its ``key`` field;
* PEM SubjectPublicKeyInfo (``--pem``): ``-----BEGIN PUBLIC KEY-----``.
"""

from __future__ import annotations

import binascii
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
    load_ssh_public_key,
)

from gateway.core.errors import BadRequest, NotFound

RECORDING_KEY_FILE = "recording_ed25519"
PUBLIC_KEY_COMMENT = "rcgate-recordings"
_PRIVATE_FILE_MODE = 0o600
_PRIVATE_DIR_MODE = 0o700


def key_path(data_dir: Path) -> Path:
    return data_dir / RECORDING_KEY_FILE


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read the key; ``NotFound`` if there is none yet, ``BadRequest`` if it is not Ed25519 PEM."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        raise NotFound(f"no recording key at {path} (the gateway creates it on first start)") from None
    if mode & 0o077:  # tighten instead of failing: a copied data dir may have a loose umask
        path.chmod(_PRIVATE_FILE_MODE)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"cannot read the recording key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BadRequest(f"the recording key {path} is not an Ed25519 key")
    return key


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The gateway's recording key: read it, or create it (0600, atomically) when missing."""
    if path.exists():
        return load_signing_key(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(mode=_PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # never replaces a key another process created meanwhile
    except FileExistsError:
        return load_signing_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def public_key_openssh(public_key: Ed25519PublicKey, comment: str = PUBLIC_KEY_COMMENT) -> str:
    line = public_key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")
    return f"{line} {comment}" if comment else line


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def parse_public_key(data: bytes) -> Ed25519PublicKey:
    """A public key given as PEM (``BEGIN PUBLIC KEY``) or an OpenSSH ``ssh-ed25519`` line."""
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN PUBLIC KEY-----"):
            key = load_pem_public_key(text)
        elif text.startswith(b"ssh-ed25519 "):
            key = load_ssh_public_key(b" ".join(text.split()[:2]))
        else:
            raise BadRequest("not a public key: expected PEM (BEGIN PUBLIC KEY) or an ssh-ed25519 line")
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadRequest(f"not a readable public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BadRequest("the public key is not an Ed25519 key")
    return key
