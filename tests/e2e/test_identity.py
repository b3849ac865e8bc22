"""Tokens, sessions, users, API keys and abuse limits, over HTTP against real processes."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest
import websockets
from conftest import TEST_PASSWORD, free_port
from support import bearer, sign_in

from application.context import CommandContext
from application.identity import CreateUser, create_user
from application.settings import Settings
from application.store import EventStore

API = "/api/v1"


def _new_user(store: EventStore, role: str = "viewer") -> str:
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    command = CreateUser(email=email, name="Someone", password=TEST_PASSWORD, role=role)
    create_user(store, CommandContext.system("test"), command)
    return email


def _pair(base_url: str, email: str, password: str = TEST_PASSWORD) -> dict[str, Any]:
    answer = sign_in(base_url, email, password)
    assert answer.status_code == 200, answer.text
    pair: dict[str, Any] = answer.json()
    return pair


def _me(base_url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{base_url}{API}/auth/me", headers=headers)


def _refresh(base_url: str, refresh_token: str) -> httpx.Response:
    return httpx.post(f"{base_url}{API}/auth/refresh", json={"refreshToken": refresh_token})


def _claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "00000000-0000-0000-0000-000000000001",
        "role": "admin",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_hex(8),
        **changes,
    }


# Tokens


def test_login_answers_a_token_pair(api_url: str, store: EventStore) -> None:
    pair = _pair(api_url, _new_user(store))
    assert pair["tokenType"] == "Bearer"
    assert pair["expiresIn"] > 0
    assert pair["refreshToken"] != pair["accessToken"]
    assert _me(api_url, bearer(pair["accessToken"])).status_code == 200


@pytest.mark.parametrize(
    ("case", "detail"),
    [
        ("expired", "expired"),
        ("wrong signature", "invalid"),
        ("wrong audience", "invalid"),
        ("wrong issuer", "invalid"),
        ("no expiry", "invalid"),
        ("none algorithm", "invalid"),
    ],
)
def test_forged_or_stale_access_tokens_are_401(
    api_url: str, settings: Settings, case: str, detail: str
) -> None:
    secret = settings.jwt_secret
    claims = _claims(settings)
    if case == "expired":
        claims = _claims(settings, iat=int(time.time()) - 120, exp=int(time.time()) - 60)
    elif case == "wrong signature":
        secret = secrets.token_urlsafe(32)
    elif case == "wrong audience":
        claims = _claims(settings, aud="someone-else")
    elif case == "wrong issuer":
        claims = _claims(settings, iss="someone-else")
    elif case == "no expiry":
        del claims["exp"]
    token = (
        jwt.encode(claims, None, algorithm="none")
        if case == "none algorithm"
        else jwt.encode(claims, secret, algorithm="HS256")
    )
    answer = httpx.get(f"{api_url}{API}/products", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json()["type"] == "/problems/unauthenticated"
    assert detail in answer.json()["detail"]


def test_a_refresh_token_is_not_an_access_token_and_the_other_way_round(
    api_url: str, store: EventStore
) -> None:
    pair = _pair(api_url, _new_user(store))
    assert _me(api_url, bearer(pair["refreshToken"])).status_code == 401
    assert _refresh(api_url, pair["accessToken"]).status_code == 401


def test_refresh_rotates_and_reusing_an_old_refresh_token_revokes_the_session(
    api_url: str, store: EventStore
) -> None:
    first = _pair(api_url, _new_user(store))
    rotated = _refresh(api_url, first["refreshToken"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refreshToken"] != first["refreshToken"]
    assert _me(api_url, bearer(second["accessToken"])).status_code == 200

    reused = _refresh(api_url, first["refreshToken"])
    assert reused.status_code == 401
    assert "revoked" in reused.json()["detail"]
    # The whole family is gone: the newest refresh token and every access token of it.
    assert _refresh(api_url, second["refreshToken"]).status_code == 401
    assert _me(api_url, bearer(second["accessToken"])).status_code == 401
    assert _me(api_url, bearer(first["accessToken"])).status_code == 401


def test_other_sessions_survive_a_revoked_one(api_url: str, store: EventStore) -> None:
    email = _new_user(store)
    stolen, other = _pair(api_url, email), _pair(api_url, email)
    _refresh(api_url, stolen["refreshToken"])
    _refresh(api_url, stolen["refreshToken"])
    assert _me(api_url, bearer(other["accessToken"])).status_code == 200
    assert _refresh(api_url, other["refreshToken"]).status_code == 200


def test_logout_revokes_the_access_token_and_the_refresh_token(
    api_url: str, store: EventStore
) -> None:
    pair = _pair(api_url, _new_user(store))
    headers = bearer(pair["accessToken"])
    answer = httpx.post(
        f"{api_url}{API}/auth/logout", json={"refreshToken": pair["refreshToken"]}, headers=headers
    )
    assert answer.status_code == 204, answer.text
    revoked = _me(api_url, headers)
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]
    assert _refresh(api_url, pair["refreshToken"]).status_code == 401


def test_logout_needs_a_token(api_url: str) -> None:
    answer = httpx.post(f"{api_url}{API}/auth/logout", json={"refreshToken": "x"})
    assert answer.status_code == 401


def test_wrong_passwords_and_unknown_emails_get_the_same_answer(
    api_url: str, store: EventStore
) -> None:
    wrong = sign_in(api_url, _new_user(store), "not-the-password")
    unknown = sign_in(api_url, f"nobody-{secrets.token_hex(3)}@example.com", "whatever-it-is")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


# Users


def test_admin_manages_users_and_changes_end_their_sessions(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    email = f"new-{secrets.token_hex(4)}@example.com"
    made = httpx.post(
        f"{api_url}{API}/users",
        json={"email": email, "name": "Nia", "password": TEST_PASSWORD, "role": "employee"},
        headers=admin_headers,
    )
    assert made.status_code == 201, made.text
    user = made.json()
    assert made.headers["Location"] == f"{API}/users/{user['id']}"
    assert user["role"] == "employee"
    assert "password" not in json.dumps(user).lower()
    position = made.headers["X-PMS-Position"]

    fresh = {**admin_headers, "X-PMS-Min-Position": position}
    listed = httpx.get(f"{api_url}{API}/users", params={"q": email[:10], "role": "employee"})
    assert listed.status_code == 401
    listed = httpx.get(
        f"{api_url}{API}/users", params={"q": email[:10], "role": "employee"}, headers=fresh
    )
    assert [u["email"] for u in listed.json()["items"]] == [email]
    viewers = httpx.get(
        f"{api_url}{API}/users", params={"role": "viewer", "q": email}, headers=fresh
    )
    assert viewers.json()["items"] == []
    one = httpx.get(f"{api_url}{API}/users/{user['id']}", headers=fresh)
    assert one.json()["email"] == email

    session = bearer(_pair(api_url, email)["accessToken"])
    promoted = httpx.patch(
        f"{api_url}{API}/users/{user['id']}", json={"role": "manager"}, headers=admin_headers
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "manager"
    assert _me(api_url, session).status_code == 401  # the old token carried the old role
    session = bearer(_pair(api_url, email)["accessToken"])
    assert _me(api_url, session).json()["role"] == "manager"

    gone = httpx.delete(f"{api_url}{API}/users/{user['id']}", headers=admin_headers)
    assert gone.status_code == 200
    assert gone.json()["active"] is False
    assert _me(api_url, session).status_code == 401
    assert sign_in(api_url, email, TEST_PASSWORD).status_code == 401


def test_admins_cannot_lock_themselves_out(api_url: str, admin_headers: dict[str, str]) -> None:
    me = _me(api_url, admin_headers).json()
    url = f"{api_url}{API}/users/{me['id']}"
    demoted = httpx.patch(url, json={"role": "viewer"}, headers=admin_headers)
    assert demoted.status_code == 403
    assert demoted.json()["type"] == "/problems/forbidden"
    assert httpx.delete(url, headers=admin_headers).status_code == 403
    assert _me(api_url, admin_headers).json()["role"] == "admin"


def test_user_input_is_validated(api_url: str, admin_headers: dict[str, str]) -> None:
    url = f"{api_url}{API}/users"
    short = {"email": "short@example.com", "name": "S", "password": "short", "role": "viewer"}
    assert httpx.post(url, json=short, headers=admin_headers).status_code == 422
    odd_role = {**short, "password": TEST_PASSWORD, "role": "root"}
    assert httpx.post(url, json=odd_role, headers=admin_headers).status_code == 422
    bad_email = {**short, "password": TEST_PASSWORD, "email": "nope"}
    assert httpx.post(url, json=bad_email, headers=admin_headers).status_code == 422


def test_changing_ones_password_ends_other_sessions(api_url: str, store: EventStore) -> None:
    email = _new_user(store)
    other = _pair(api_url, email)
    current = _pair(api_url, email)
    url = f"{api_url}{API}/auth/password"
    headers = bearer(current["accessToken"])
    wrong = httpx.post(
        url,
        json={"currentPassword": "not-my-password", "newPassword": "brand-new-password"},
        headers=headers,
    )
    assert wrong.status_code == 422
    changed = httpx.post(
        url,
        json={"currentPassword": TEST_PASSWORD, "newPassword": "brand-new-password"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert int(changed.headers["X-PMS-Position"]) > 0
    assert _me(api_url, bearer(changed.json()["accessToken"])).status_code == 200
    for stale in (other, current):
        assert _me(api_url, bearer(stale["accessToken"])).status_code == 401
        assert _refresh(api_url, stale["refreshToken"]).status_code == 401
    assert sign_in(api_url, email, TEST_PASSWORD).status_code == 401
    assert sign_in(api_url, email, "brand-new-password").status_code == 200


def test_signup_only_while_enabled_and_only_as_viewer(
    start_api: Callable[..., str], fresh_settings: Callable[[], Settings]
) -> None:
    settings = fresh_settings()  # company settings are shared state: use a database of our own
    api = start_api(settings)
    admin = bearer(_pair(api, settings.admin_email, settings.admin_password)["accessToken"])
    email = f"self-{secrets.token_hex(4)}@example.com"
    body = {"email": email, "name": "Sam", "password": TEST_PASSWORD}
    closed = httpx.post(f"{api}{API}/auth/register", json=body)
    assert closed.status_code == 403
    assert closed.json()["type"] == "/problems/forbidden"

    current = httpx.get(f"{api}{API}/settings", headers=admin).json()
    opened = {k: v for k, v in current.items() if k not in ("version", "defaultLocationId")}
    assert httpx.put(
        f"{api}{API}/settings", json={**opened, "signupEnabled": True}, headers=admin
    ).is_success
    registered = httpx.post(f"{api}{API}/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    assert registered.json()["role"] == "viewer"
    me = _me(api, bearer(_pair(api, email)["accessToken"])).json()
    assert me["role"] == "viewer"
    sneaky = httpx.post(f"{api}{API}/auth/register", json={**body, "role": "admin"})
    assert sneaky.status_code == 400
    assert httpx.post(f"{api}{API}/auth/register", json=body).status_code == 409


# API keys


def test_api_keys_are_shown_once_scoped_to_a_role_and_revocable(
    api_url: str, admin_headers: dict[str, str], store: EventStore, workers: None
) -> None:
    made = httpx.post(
        f"{api_url}{API}/api-keys",
        json={"name": "scanner", "role": "employee"},
        headers=admin_headers,
    )
    assert made.status_code == 201, made.text
    created = made.json()
    key = created["key"]
    assert key.startswith(f"pms_{created['prefix']}_")
    headers = {"X-API-Key": key}

    assert httpx.get(f"{api_url}{API}/products", headers=headers).status_code == 200
    location = httpx.post(
        f"{api_url}{API}/customers",
        json={"email": f"c-{secrets.token_hex(3)}@example.com", "name": "By key"},
        headers=headers,
    )
    assert location.status_code == 201, location.text
    [event] = store.notifications(int(location.headers["X-PMS-Position"]) - 1, 1)
    assert event.metadata["actor"] == f"apikey:{created['id']}"
    denied = httpx.post(
        f"{api_url}{API}/products",
        json={"sku": "K-1", "name": "K", "price": {"amount": 1, "currency": "EUR"}},
        headers=headers,
    )
    assert denied.status_code == 403
    assert _me(api_url, headers).status_code == 403  # a key is not a user account

    fresh = {**admin_headers, "X-PMS-Min-Position": made.headers["X-PMS-Position"]}
    listed = httpx.get(f"{api_url}{API}/api-keys", headers=fresh).json()["items"]
    [mine] = [k for k in listed if k["id"] == created["id"]]
    assert "key" not in mine
    assert key not in json.dumps(listed)
    assert mine["lastUsedAt"] is not None
    assert mine["role"] == "employee"

    revoked = httpx.delete(f"{api_url}{API}/api-keys/{created['id']}", headers=admin_headers)
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert httpx.get(f"{api_url}{API}/products", headers=headers).status_code == 401


@pytest.mark.parametrize("key", ["", "nope", "pms_0000000000_" + "A" * 43, "pms_zzzz_" + "A" * 43])
def test_unknown_or_malformed_api_keys_are_401(api_url: str, key: str) -> None:
    answer = httpx.get(f"{api_url}{API}/products", headers={"X-API-Key": key})
    assert answer.status_code == 401


def test_a_forged_key_with_a_real_prefix_is_401(
    api_url: str, admin_headers: dict[str, str]
) -> None:
    made = httpx.post(
        f"{api_url}{API}/api-keys", json={"name": "real", "role": "viewer"}, headers=admin_headers
    ).json()
    forged = f"pms_{made['prefix']}_" + "B" * 43
    assert httpx.get(f"{api_url}{API}/products", headers={"X-API-Key": forged}).status_code == 401


async def test_websocket_accepts_api_keys_and_refuses_revoked_tokens(
    api_url: str, admin_headers: dict[str, str], store: EventStore
) -> None:
    ws_url = api_url.replace("http", "ws") + f"{API}/ws"
    async with httpx.AsyncClient(base_url=api_url, headers=admin_headers) as client:
        made = (await client.post(f"{API}/api-keys", json={"name": "ws", "role": "viewer"})).json()
    async with websockets.connect(f"{ws_url}?token={made['key']}") as socket:
        await socket.send(json.dumps({"type": "subscribe", "topic": "alerts"}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert ack["type"] == "subscribed"

    pair = await asyncio.to_thread(_pair, api_url, _new_user(store))
    async with httpx.AsyncClient(base_url=api_url) as client:
        await client.post(
            f"{API}/auth/logout",
            json={"refreshToken": pair["refreshToken"]},
            headers=bearer(pair["accessToken"]),
        )
    async with websockets.connect(f"{ws_url}?token={pair['accessToken']}") as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


# Hardening


def test_answers_carry_security_headers(api_url: str, admin_headers: dict[str, str]) -> None:
    for answer in (
        httpx.get(f"{api_url}{API}/products", headers=admin_headers),
        httpx.get(f"{api_url}{API}/no-such-route"),
    ):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["Cache-Control"] == "no-store"
    docs = httpx.get(f"{api_url}/schema/openapi.json")
    assert docs.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in docs.headers


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 40 + b"]" * 40,
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
        b'{"sku": "X", "name": "' + b"n" * 20_000 + b'"}',
        b'{"' + b"k" * 20_000 + b'": 1}',
        b'{"sku": "NUL", "name": "a\\u0000b", "price": {"amount": 1, "currency": "EUR"}}',
    ],
    ids=["deep", "very deep", "long string", "long key", "NUL character"],
)
def test_json_that_nests_too_deep_or_carries_huge_strings_or_nul_is_400(
    api_url: str, admin_headers: dict[str, str], body: bytes
) -> None:
    answer = httpx.post(
        f"{api_url}{API}/products",
        content=body,
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"] == "/problems/validation-error"


def test_nul_characters_in_the_url_are_400(api_url: str, admin_headers: dict[str, str]) -> None:
    answer = httpx.get(f"{api_url}{API}/audit/events?actor=a%00b", headers=admin_headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"] == "/problems/validation-error"


def test_cors_allows_only_configured_origins(api_url: str, start_api: Callable[..., str]) -> None:
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    closed = httpx.options(f"{api_url}{API}/products", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    api = start_api(cors_origins=("https://shop.example",))
    open_ = httpx.options(f"{api}{API}/products", headers=preflight)
    assert open_.headers["access-control-allow-origin"] == "https://shop.example"
    other = httpx.options(
        f"{api}{API}/products", headers={**preflight, "Origin": "https://x.example"}
    )
    assert other.headers.get("access-control-allow-origin") != "https://x.example"


def test_tokens_are_refused_with_503_while_redis_is_unreachable(
    api_url: str, start_api: Callable[..., str], admin_headers: dict[str, str]
) -> None:
    blind = start_api(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    answer = httpx.get(f"{blind}{API}/products", headers=admin_headers, timeout=10)
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "/problems/service-unavailable"
    assert answer.headers["Retry-After"] == "1"


# Abuse limits (an API process of their own, with small limits)


@pytest.fixture(scope="module")
def strict_api(start_api: Callable[..., str]) -> str:
    """The session's database behind an API with tiny limits."""
    return start_api(
        rate_limit_per_minute=5,
        rate_limit_groups=(("auth", 50),),
        login_max_attempts=3,
        login_ip_max_attempts=5,
        login_lockout_seconds=1,
    )


def _from(address: str) -> dict[str, str]:
    # uvicorn trusts X-Forwarded-For from loopback (its default), so each test can be a client
    # of its own.
    return {"X-Forwarded-For": address}


def test_requests_beyond_the_rate_limit_get_429(strict_api: str, store: EventStore) -> None:
    one = bearer(_pair(strict_api, _new_user(store))["accessToken"])
    other = bearer(_pair(strict_api, _new_user(store))["accessToken"])
    answers = [httpx.get(f"{strict_api}{API}/auth/me", headers=one) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[0].headers["RateLimit-Limit"] == "5"
    assert answers[0].headers["RateLimit-Remaining"] == "4"
    assert answers[4].headers["RateLimit-Remaining"] == "0"
    assert 0 < int(answers[0].headers["RateLimit-Reset"]) <= 60
    limited = answers[5]
    assert limited.json()["type"] == "/problems/rate-limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert httpx.get(f"{strict_api}{API}/auth/me", headers=other).status_code == 200
    # Sign-in is its own group ("auth", 50 a minute here), counted per client address.
    group = sign_in(strict_api, "nobody@example.com", "whatever-it-is", **_from("10.0.2.1"))
    assert group.headers["RateLimit-Limit"] == "50"
    assert group.headers["RateLimit-Remaining"] == "49"


def test_failed_logins_back_off_per_account_doubling(strict_api: str, store: EventStore) -> None:
    email = _new_user(store)
    client = _from("10.0.0.1")
    wrong = [sign_in(strict_api, email, "wrong-password", **client) for _ in range(3)]
    assert [a.status_code for a in wrong] == [401, 401, 401]
    # Locked: even the right password waits, and every address is refused for this account.
    locked = sign_in(strict_api, email, TEST_PASSWORD, **_from("10.0.0.2"))
    assert locked.status_code == 429
    assert locked.json()["type"] == "/problems/rate-limited"
    assert locked.headers["Retry-After"] == "1"
    time.sleep(1.1)
    assert sign_in(strict_api, email, "wrong-again", **client).status_code == 401
    doubled = sign_in(strict_api, email, TEST_PASSWORD, **client)
    assert doubled.status_code == 429
    assert doubled.headers["Retry-After"] == "2"
    time.sleep(2.1)
    assert sign_in(strict_api, email, TEST_PASSWORD, **client).status_code == 200
    # Success clears the account's count (not the address's: 10.0.0.1 has failed 4 times).
    elsewhere = _from("10.0.0.3")
    assert sign_in(strict_api, email, "wrong-once-more", **elsewhere).status_code == 401
    assert sign_in(strict_api, email, TEST_PASSWORD, **elsewhere).status_code == 200


def test_failed_logins_back_off_per_address(strict_api: str, store: EventStore) -> None:
    sprayer = _from("10.0.1.1")
    for _ in range(5):
        stranger = f"nobody-{secrets.token_hex(3)}@example.com"
        assert sign_in(strict_api, stranger, "guess-guess", **sprayer).status_code == 401
    email = _new_user(store)
    assert sign_in(strict_api, email, TEST_PASSWORD, **sprayer).status_code == 429
    assert sign_in(strict_api, email, TEST_PASSWORD, **_from("10.0.1.2")).status_code == 200


def test_remembered_access_tokens_still_expire_and_stay_few(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process remembers tokens it has checked; an expired one is refused all the same."""
    from litestar.exceptions import NotAuthorizedException

    from api import auth
    from domain.identity import User

    issuer = auth.TokenIssuer("k" * 40, "pms", "pms-api", ttl_seconds=1)
    user = User.register(
        email="t@example.com", name="T", role="viewer", department=None, password_hash="x"
    )
    token = issuer.issue(user, "session")
    first = issuer.verify(token)
    assert issuer.verify(token) == first
    assert first.subject_id == str(user.id)
    while time.time() < first.expires_at:
        time.sleep(0.05)
    with pytest.raises(NotAuthorizedException, match="expired"):
        issuer.verify(token)
    monkeypatch.setattr(auth, "VERIFIED_TOKENS", 3)
    lasting = replace(issuer, ttl_seconds=60)
    tokens = [lasting.issue(user, f"s{n}") for n in range(5)]
    for token in tokens:
        lasting.verify(token)
    assert list(lasting._verified) == tokens[2:]
    lasting.verify(tokens[2])
    assert list(lasting._verified) == [tokens[3], tokens[4], tokens[2]]
