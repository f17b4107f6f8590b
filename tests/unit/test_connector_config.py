"""The connector's login files: private permissions, XDG location, and clear errors when unusable."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import asyncssh
import pytest

from gateway.auth.ssh_ca import SshCertificateAuthority
from gateway.connector import config
from gateway.core.errors import BadRequest, NotFound, Unauthenticated

GATEWAY = config.GatewayInfo(url="https://gw.example", ssh_host="gw.example", user="alice")


def _login(
    d: Path, ca: SshCertificateAuthority, *, principal: str = "alice", now: float | None = None
) -> None:
    public = config.ensure_key(d)
    cert = ca.issue_user_certificate(public, principal, "ws1", now=time.time() if now is None else now)
    config.save_certificate(cert, d)
    config.save_gateway(GATEWAY, d)


@pytest.fixture
def ca() -> SshCertificateAuthority:
    return SshCertificateAuthority(asyncssh.generate_private_key("ssh-ed25519"))


def test_config_dir_follows_xdg_and_ignores_relative_values() -> None:
    assert config.config_dir({"XDG_CONFIG_HOME": "/x/cfg"}) == Path("/x/cfg/rcgate")
    assert config.config_dir({"XDG_CONFIG_HOME": "rel"}) == Path.home() / ".config" / "rcgate"
    assert config.config_dir({}) == Path.home() / ".config" / "rcgate"


def test_files_are_0600_in_a_0700_directory(tmp_path: Path, ca: SshCertificateAuthority) -> None:
    d = tmp_path / "rcgate"
    _login(d, ca)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in (config.KEY_FILE, config.PUBLIC_KEY_FILE, config.CERT_FILE, config.GATEWAY_FILE):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600, name
    assert [p.name for p in d.iterdir() if p.name.endswith(".tmp")] == []


def test_the_key_is_created_once_and_reused(tmp_path: Path) -> None:
    assert config.ensure_key(tmp_path) == config.ensure_key(tmp_path)


def test_a_complete_login_loads_as_an_identity(tmp_path: Path, ca: SshCertificateAuthority) -> None:
    _login(tmp_path, ca)
    ident = config.load_identity(tmp_path)
    assert ident.gateway == GATEWAY and ident.gateway.ssh_port == 2222
    assert ident.certificate.key.public_data == ident.key.public_data


def test_missing_login_says_run_rcgate_login(tmp_path: Path, ca: SshCertificateAuthority) -> None:
    with pytest.raises(NotFound, match="rcgate login"):
        config.load_identity(tmp_path)
    config.save_gateway(GATEWAY, tmp_path)
    with pytest.raises(NotFound, match="rcgate login"):
        config.load_identity(tmp_path)


def test_expired_or_foreign_certificates_are_unusable(tmp_path: Path, ca: SshCertificateAuthority) -> None:
    _login(tmp_path, ca, now=time.time() - 13 * 3600)
    with pytest.raises(Unauthenticated, match="expired"):
        config.load_identity(tmp_path)
    _login(tmp_path, ca, principal="bob")
    with pytest.raises(Unauthenticated, match="principal"):
        config.load_identity(tmp_path)
    other = tmp_path / "other"
    _login(other, ca)
    (tmp_path / config.CERT_FILE).write_bytes((other / config.CERT_FILE).read_bytes())
    with pytest.raises(Unauthenticated, match="another key"):
        config.load_identity(tmp_path)


def test_bad_files_give_bad_request(tmp_path: Path) -> None:
    with pytest.raises(BadRequest):
        config.save_certificate("ssh-ed25519 AAAA not-a-cert", tmp_path)
    (tmp_path / config.GATEWAY_FILE).write_text('{"url": "x"}')
    with pytest.raises(BadRequest, match="not a valid gateway file"):
        config.load_gateway(tmp_path)
    (tmp_path / config.GATEWAY_FILE).write_text("{broken")
    with pytest.raises(BadRequest):
        config.load_gateway(tmp_path)
