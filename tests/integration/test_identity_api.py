"""The identity API end to end over HTTP (real aiohttp app, embedded store, software authenticator)."""

from __future__ import annotations

import pyotp

from gateway.core.models import Role
from tests.fixtures.soft_authenticator import SoftAuthenticator
from tests.integration.conftest import ORIGIN, Gateway


async def _passkey_signin(gw: Gateway, auth: SoftAuthenticator, **forge: object) -> tuple[int, object]:
    api = gw.api()
    origin = str(forge.pop("origin", ORIGIN))
    status, opts = await api.post("/api/login/passkey/options")
    assert status == 200
    cred = auth.get(opts["options"], origin, **forge)  # type: ignore[arg-type]
    return await api.post("/api/login/passkey", {"challenge_id": opts["challenge_id"], "credential": cred})


# ---- enrolment links ------------------------------------------------------------------------------


async def test_enrolment_link_is_single_use(gateway: Gateway) -> None:
    _, url = await gateway.identity.add_user("bob")
    token = url.split("#token=")[1]
    status, _ = await gateway.api().post("/api/enrol/start", {"token": token})
    assert status == 200
    status, body = await gateway.api().post("/api/enrol/start", {"token": token})
    assert status == 400 and body["error"] == "enrol_link_invalid"
    assert "already used" in body["message"]


async def test_expired_enrolment_link_is_refused(gateway: Gateway) -> None:
    _, url = await gateway.identity.add_user("bob")
    gateway.clock.advance(24 * 3600 + 1)
    status, body = await gateway.api().post("/api/enrol/start", {"token": url.split("#token=")[1]})
    assert status == 400 and body["error"] == "enrol_link_invalid"


async def test_forged_enrolment_link_is_refused(gateway: Gateway) -> None:
    await gateway.identity.add_user("bob")
    status, body = await gateway.api().post("/api/enrol/start", {"token": "A" * 22})
    assert status == 400 and body["error"] == "enrol_link_invalid"


async def test_enrolment_session_cannot_do_anything_but_add_factors(gateway: Gateway) -> None:
    _, url = await gateway.identity.add_user("bob")
    api = gateway.api()
    await api.post("/api/enrol/start", {"token": url.split("#token=")[1]})
    await api.refresh()
    status, body = await api.call("GET", "/api/logins")
    assert status == 401 and "enrolment" in body["message"]


# ---- passkeys ---------------------------------------------------------------------------------------


async def test_passkey_enrol_then_discoverable_signin(gateway: Gateway) -> None:
    _, auth = await gateway.enrol_passkey("alice")
    status, body = await _passkey_signin(gateway, auth)
    assert status == 200 and body["user"]["name"] == "alice"  # type: ignore[index]


async def test_passkey_with_wrong_origin_is_refused(gateway: Gateway) -> None:
    _, auth = await gateway.enrol_passkey("alice")
    status, body = await _passkey_signin(gateway, auth, origin="http://evil.localhost:8080")
    assert status == 400 and body["error"] == "webauthn_refused"  # type: ignore[index]


async def test_passkey_with_wrong_rp_id_is_refused(gateway: Gateway) -> None:
    _, auth = await gateway.enrol_passkey("alice")
    status, body = await _passkey_signin(gateway, auth, rp_id="evil.example")
    assert status == 400 and body["error"] == "webauthn_refused"  # type: ignore[index]


async def test_passkey_with_tampered_client_data_is_refused(gateway: Gateway) -> None:
    _, auth = await gateway.enrol_passkey("alice")
    status, body = await _passkey_signin(gateway, auth, tamper_client_data=True)
    assert status == 400 and body["error"] == "webauthn_refused"  # type: ignore[index]


async def test_passkey_challenge_cannot_be_reused(gateway: Gateway) -> None:
    _, auth = await gateway.enrol_passkey("alice")
    api = gateway.api()
    _, opts = await api.post("/api/login/passkey/options")
    cred = auth.get(opts["options"], ORIGIN)
    status, _ = await api.post(
        "/api/login/passkey", {"challenge_id": opts["challenge_id"], "credential": cred}
    )
    assert status == 200
    again = gateway.api()
    status, body = await again.post(
        "/api/login/passkey", {"challenge_id": opts["challenge_id"], "credential": cred}
    )
    assert status == 400 and body["error"] == "challenge_invalid"


async def test_passkey_challenge_expires_after_five_minutes(gateway: Gateway) -> None:
    _, auth = await gateway.enrol_passkey("alice")
    api = gateway.api()
    _, opts = await api.post("/api/login/passkey/options")
    cred = auth.get(opts["options"], ORIGIN)
    gateway.clock.advance(5 * 60 + 1)
    status, body = await api.post(
        "/api/login/passkey", {"challenge_id": opts["challenge_id"], "credential": cred}
    )
    assert status == 400 and body["error"] == "challenge_invalid"


async def test_passkey_counter_regression_is_refused_and_audited(gateway: Gateway) -> None:
    _, auth = await gateway.enrol_passkey("alice")
    status, _ = await _passkey_signin(gateway, auth, count=10)
    assert status == 200
    status, body = await _passkey_signin(gateway, auth, count=9)
    assert status == 400 and body["error"] == "webauthn_counter"  # type: ignore[index]
    events = await gateway.identity.audit_events(limit=500)
    assert any(e.type == "webauthn.counter_regression" for e in events)


# ---- TOTP -------------------------------------------------------------------------------------------


async def test_totp_signin_then_replayed_code_is_refused(gateway: Gateway) -> None:
    _, secret = await gateway.enrol_totp("carol")
    gateway.clock.advance(30)  # the enrolment code's step is consumed: use the next one
    code = pyotp.TOTP(secret).at(gateway.clock.now())
    status, body = await gateway.api().post(
        "/api/login/totp", {"username": "carol", "password": "correct horse battery", "code": code}
    )
    assert status == 200, body
    status, body = await gateway.api().post(
        "/api/login/totp", {"username": "carol", "password": "correct horse battery", "code": code}
    )
    assert status == 401 and body["error"] == "signin_failed"


async def test_totp_enrolment_code_cannot_sign_in(gateway: Gateway) -> None:
    _, secret = await gateway.enrol_totp("carol")
    code = pyotp.TOTP(secret).at(gateway.clock.now())
    status, _ = await gateway.api().post(
        "/api/login/totp", {"username": "carol", "password": "correct horse battery", "code": code}
    )
    assert status == 401


async def test_totp_out_of_window_is_refused(gateway: Gateway) -> None:
    _, secret = await gateway.enrol_totp("carol")
    old = pyotp.TOTP(secret).at(gateway.clock.now() - 120)
    gateway.clock.advance(60)
    status, _ = await gateway.api().post(
        "/api/login/totp", {"username": "carol", "password": "correct horse battery", "code": old}
    )
    assert status == 401


async def test_totp_non_numeric_or_too_long_code_is_refused(gateway: Gateway) -> None:
    await gateway.enrol_totp("carol")
    for code in ("abcdef", "1234567", "12 34", "\uff11\uff12\uff13\uff14\uff15\uff16"):  # fullwidth digits
        status, body = await gateway.api().post(
            "/api/login/totp", {"username": "carol", "password": "correct horse battery", "code": code}
        )
        assert status == 401, code
    status, body = await gateway.api().post(
        "/api/login/totp", {"username": "carol", "password": "x", "code": "1" * 40}
    )
    assert status == 400 and "code" in body["message"]


async def test_five_failures_lock_the_factor_and_unlock_is_audited(gateway: Gateway) -> None:
    _, secret = await gateway.enrol_totp("carol")
    for _ in range(5):
        status, _ = await gateway.api().post(
            "/api/login/totp", {"username": "carol", "password": "wrong password!", "code": "000000"}
        )
        assert status == 401
    gateway.clock.advance(30)
    good = pyotp.TOTP(secret).at(gateway.clock.now())
    status, body = await gateway.api().post(
        "/api/login/totp", {"username": "carol", "password": "correct horse battery", "code": good}
    )
    assert status == 423 and body["retry_after_s"] > 0
    gateway.clock.advance(61)
    good = pyotp.TOTP(secret).at(gateway.clock.now())
    status, _ = await gateway.api().post(
        "/api/login/totp", {"username": "carol", "password": "correct horse battery", "code": good}
    )
    assert status == 200
    types = [e.type for e in await gateway.identity.audit_events(limit=500)]
    assert "factor.locked" in types and "factor.unlocked" in types


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(gateway: Gateway) -> None:
    await gateway.enrol_totp("carol")
    s1, b1 = await gateway.api().post(
        "/api/login/totp", {"username": "carol", "password": "wrong password!", "code": "123456"}
    )
    s2, b2 = await gateway.api().post(
        "/api/login/totp", {"username": "nobody", "password": "wrong password!", "code": "123456"}
    )
    assert (s1, b1) == (s2, b2)


# ---- step-up ----------------------------------------------------------------------------------------


async def test_stale_factor_answers_reauth_required_then_stepup_retry_works(gateway: Gateway) -> None:
    api, auth = await gateway.enrol_passkey("admin1", Role.ADMIN)
    gateway.clock.advance(6 * 60)
    status, body = await api.post("/api/admin/users", {"name": "dave", "role": "member"})
    assert status == 401 and body["error"] == "reauth_required"
    assert body["factors"] == ["passkey"] and body["max_age_s"] == 300
    _, opts = await api.post("/api/stepup/passkey/options")
    cred = auth.get(opts["options"], ORIGIN)
    status, body = await api.post(
        "/api/stepup/passkey", {"challenge_id": opts["challenge_id"], "credential": cred}
    )
    assert status == 200 and body["login"]["last_factor"] == "passkey"
    status, body = await api.post("/api/admin/users", {"name": "dave", "role": "member"})
    assert status == 200 and "/enrol#token=" in body["enrol_url"]


async def test_totp_stepup_with_a_used_code_fails(gateway: Gateway) -> None:
    api, secret = await gateway.enrol_totp("carol")
    code = pyotp.TOTP(secret).at(gateway.clock.now())  # consumed by the enrolment
    status, body = await api.post("/api/stepup/totp", {"code": code})
    assert status == 403 and body["error"] == "stepup_failed"


# ---- CSRF, Origin, bodies ---------------------------------------------------------------------------


async def test_request_without_csrf_token_is_refused(gateway: Gateway) -> None:
    api = gateway.api()
    await api.refresh()
    status, body = await api.call("POST", "/api/login/passkey/options", {}, headers={"X-CSRF-Token": ""})
    assert status == 403 and body["error"] == "csrf"


async def test_request_from_foreign_origin_is_refused(gateway: Gateway) -> None:
    api = gateway.api()
    await api.refresh()
    status, body = await api.call(
        "POST", "/api/login/passkey/options", {}, headers={"Origin": "http://evil.com"}
    )
    assert status == 403 and body["error"] == "csrf" and "foreign origin" in body["message"]


async def test_signed_in_csrf_token_differs_from_anonymous_one(gateway: Gateway) -> None:
    _, url = await gateway.identity.add_user("alice")
    api = gateway.api()
    anon = (await api.refresh())["csrf_token"]
    status, _ = await api.post("/api/enrol/start", {"token": url.split("#token=")[1]})
    assert status == 200
    me = await api.refresh()
    assert me["user"]["name"] == "alice" and me["csrf_token"] != anon


async def test_oversized_body_is_413_with_a_message(gateway: Gateway) -> None:
    api = gateway.api()
    status, body = await api.call("POST", "/api/login/totp", raw=b'{"username": "' + b"a" * 70000 + b'"}')
    assert status == 413 and body["error"] == "payload_too_large"


async def test_malformed_json_is_400_with_a_message(gateway: Gateway) -> None:
    api = gateway.api()
    status, body = await api.call("POST", "/api/login/totp", raw=b'{"username": ')
    assert status == 400 and "malformed JSON" in body["message"]
    status, body = await api.call("POST", "/api/login/totp", raw=b'{"username": "a", "bogus": 1}')
    assert status == 400 and "unknown field" in body["message"]


# ---- account ----------------------------------------------------------------------------------------


async def test_last_factor_cannot_be_removed(gateway: Gateway) -> None:
    api, _ = await gateway.enrol_passkey("alice")
    _, body = await api.call("GET", "/api/factors")
    fid = body["factors"][0]["id"]
    status, body = await api.call("DELETE", f"/api/factors/{fid}")
    assert status == 409 and "last factor" in body["message"]


async def test_user_sees_and_ends_other_login_sessions(gateway: Gateway) -> None:
    api, auth = await gateway.enrol_passkey("alice")
    status, _ = await _passkey_signin(gateway, auth)
    assert status == 200
    _, body = await api.call("GET", "/api/logins")
    assert len(body["logins"]) == 2
    other = next(x for x in body["logins"] if not x["current"])
    status, _ = await api.call("DELETE", f"/api/logins/{other['id']}")
    assert status == 204
    _, body = await api.call("GET", "/api/logins")
    assert [x["current"] for x in body["logins"]] == [True]


async def test_login_session_idle_expiry(gateway: Gateway) -> None:
    api, _ = await gateway.enrol_passkey("alice")
    gateway.clock.advance(15 * 60 + 1)
    me = await api.refresh()
    assert me["user"] is None


async def test_disabled_user_loses_every_session(gateway: Gateway) -> None:
    api, _ = await gateway.enrol_passkey("alice")
    user = await gateway.identity.user_by_name("alice")
    await gateway.identity.disable_user(user.id)
    me = await api.refresh()
    assert me["user"] is None


async def test_openapi_document_lists_the_api(gateway: Gateway) -> None:
    r = await gateway.client.get("/api/openapi.json")
    doc = await r.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/login/totp" in doc["paths"] and "post" in doc["paths"]["/api/login/totp"]
    assert "TotpSignin" in doc["components"]["schemas"]
