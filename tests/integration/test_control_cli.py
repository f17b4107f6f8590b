"""`rcgate links` and `rcgate sessions` from a terminal: create, list, revoke, end (owner, TOTP sign-in)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyotp
import pytest

from gateway.connector.control_cli import links, parse_ttl, sessions
from gateway.core.errors import BadRequest
from tests.integration.conftest import ORIGIN, Gateway
from tests.integration.test_sessions_api import _share


def _answers(*values: str) -> Iterator[str]:
    yield from values


async def test_owner_creates_lists_revokes_links_and_ends_the_session(gateway: Gateway) -> None:
    _, secret = await gateway.enrol_totp("olivia")
    handle, uplink = await _share(gateway, "olivia")
    url = str(gateway.client.make_url("/")).rstrip("/")

    def signin() -> object:
        gateway.clock.advance(30)  # every sign-in uses a new TOTP step
        it = _answers("olivia", "correct horse battery", pyotp.TOTP(secret).at(gateway.clock.now()))
        return lambda prompt, secret_: next(it)

    out = io.StringIO()
    await links("create", handle.session_id, url, ttl="5m", ask=signin(), out=out, origin=ORIGIN)  # type: ignore[arg-type]
    assert "/l/" in out.getvalue() and "ssh -p" in out.getvalue()
    out = io.StringIO()
    await links("list", handle.session_id, url, ask=signin(), out=out, origin=ORIGIN)  # type: ignore[arg-type]
    link_id = out.getvalue().split()[0]
    assert "open" in out.getvalue()
    out = io.StringIO()
    await links("revoke", handle.session_id, url, link_id=link_id, ask=signin(), out=out, origin=ORIGIN)  # type: ignore[arg-type]
    assert "revoked" in out.getvalue()
    out = io.StringIO()
    await sessions("list", None, url, ask=signin(), out=out, origin=ORIGIN)  # type: ignore[arg-type]
    assert handle.session_id in out.getvalue()
    out = io.StringIO()
    await sessions("end", handle.session_id, url, ask=signin(), out=out, origin=ORIGIN)  # type: ignore[arg-type]
    assert "ended" in out.getvalue() and uplink.ended is not None


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("1h", 3600)])
def test_ttl_parsing(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


def test_bad_ttl_is_refused_with_a_message() -> None:
    with pytest.raises(BadRequest, match="duration"):
        parse_ttl("ten minutes")
