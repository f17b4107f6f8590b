"""The gateway SSH CA: what a connector certificate says, what it permits, and what is refused."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncssh
import pytest
from asyncssh.public_key import CERT_TYPE_USER

from gateway.auth.ssh_ca import (
    CLOCK_SKEW_S,
    CONNECTOR_FORCED_COMMAND,
    USER_CERT_VALID_S,
    SshCertificateAuthority,
    load_or_create_host_key,
)
from gateway.core.errors import BadRequest
from gateway.protocol.connector_wire import EXEC_COMMAND

T0 = 1_767_225_600.0


@pytest.fixture
def ca(tmp_path: Path) -> SshCertificateAuthority:
    return SshCertificateAuthority.load_or_create(tmp_path / "data" / "ca")


@pytest.fixture
def user_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def _pub(key: asyncssh.SSHKey) -> str:
    data: bytes = key.export_public_key()
    return data.decode()


def test_ca_key_is_created_0600_and_reloaded_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ca"
    first = SshCertificateAuthority.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert SshCertificateAuthority.load_or_create(path).public_key_openssh() == first.public_key_openssh()


def test_host_key_is_persistent_and_private(tmp_path: Path) -> None:
    path = tmp_path / "host"
    key = load_or_create_host_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_host_key(path).public_data == key.public_data


def test_loose_key_file_permissions_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "host"
    load_or_create_host_key(path)
    path.chmod(0o644)
    load_or_create_host_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_authorized_keys_line_trusts_the_ca_only_as_a_cert_authority(ca: SshCertificateAuthority) -> None:
    line = ca.authorized_keys_line()
    assert line.startswith("cert-authority ssh-ed25519 ")
    assert line.split()[1:] == ca.public_key_openssh().split()


def test_certificate_names_one_principal_the_host_and_lives_twelve_hours(
    ca: SshCertificateAuthority, user_key: asyncssh.SSHKey
) -> None:
    text = ca.issue_user_certificate(_pub(user_key), "alice", "ws1.example", now=T0)
    cert = asyncssh.import_certificate(text)
    assert cert.principals == ["alice"]
    assert cert.key.public_data == user_key.public_data
    assert cert.signing_key.public_data == ca.key.public_data
    assert "alice@ws1.example" in cert._key_id
    assert cert._valid_after == int(T0) - CLOCK_SKEW_S
    assert cert._valid_before == int(T0) + USER_CERT_VALID_S
    assert cert._cert_type == CERT_TYPE_USER


def test_certificate_permits_nothing_but_the_connector_command(
    ca: SshCertificateAuthority, user_key: asyncssh.SSHKey
) -> None:
    cert = asyncssh.import_certificate(ca.issue_user_certificate(_pub(user_key), "alice", "ws1", now=T0))
    # asyncssh lists only the permit-* extensions a certificate carries: none here.
    assert cert.options == {"force-command": EXEC_COMMAND}
    assert EXEC_COMMAND == CONNECTOR_FORCED_COMMAND


def test_serials_are_random(ca: SshCertificateAuthority, user_key: asyncssh.SSHKey) -> None:
    serials = {
        asyncssh.import_certificate(ca.issue_user_certificate(_pub(user_key), "alice", "ws1", now=T0))._serial
        for _ in range(5)
    }
    assert len(serials) == 5


@pytest.mark.parametrize(
    ("principal", "host", "valid_s", "message"),
    [
        ("", "ws1", 3600, "principal"),
        ("alice,root", "ws1", 3600, "principal"),
        ("alice bob", "ws1", 3600, "principal"),
        ("alice", "ws 1", 3600, "host"),
        ("alice", "-ws1", 3600, "host"),
        ("alice", "ws1", 0, "lifetime"),
        ("alice", "ws1", 30 * 24 * 3600, "lifetime"),
    ],
    ids=["empty-principal", "comma", "space", "host-space", "host-dash", "zero-life", "month-life"],
)
def test_bad_requests_are_refused(
    ca: SshCertificateAuthority,
    user_key: asyncssh.SSHKey,
    principal: str,
    host: str,
    valid_s: int,
    message: str,
) -> None:
    with pytest.raises(BadRequest, match=message):
        ca.issue_user_certificate(_pub(user_key), principal, host, now=T0, valid_s=valid_s)


def test_garbage_a_certificate_or_an_rsa_key_is_not_certified(ca: SshCertificateAuthority) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    cert_text = ca.issue_user_certificate(_pub(key), "alice", "ws1", now=T0)
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    for bad in ("not a key", cert_text, _pub(rsa)):
        with pytest.raises(BadRequest):
            ca.issue_user_certificate(bad, "alice", "ws1", now=T0)


def test_the_ca_key_itself_is_never_certified(ca: SshCertificateAuthority) -> None:
    with pytest.raises(BadRequest, match="CA key"):
        ca.issue_user_certificate(ca.public_key_openssh(), "alice", "ws1", now=T0)
