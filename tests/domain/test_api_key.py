"""ApiKey: only a hash is kept, the exact key is accepted until revoked; also the new User rules."""

from __future__ import annotations

import secrets
import string
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import in_memory_application, replay, save_and_reload, state_of

from domain.api_keys import ApiKey, compose_key, hash_key, key_prefix
from domain.errors import InvalidValue
from domain.identity import ROLES, NotPermitted, User

prefixes = st.text(alphabet="0123456789abcdef", min_size=10, max_size=10)
secrets_ = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=43, max_size=43)
keys = st.builds(compose_key, prefixes, secrets_)
roles = st.sampled_from(ROLES)


def _key() -> str:
    return compose_key(secrets.token_hex(5), secrets.token_urlsafe(32))


@given(keys, roles)
def test_an_issued_key_keeps_only_its_hash_and_accepts_exactly_itself(key: str, role: str) -> None:
    api_key = ApiKey.issue(name=" scanner ", role=role, key=key)
    assert key not in repr(state_of(api_key))
    assert api_key.key_hash == hash_key(key)
    assert (api_key.name, api_key.role, api_key.active) == ("scanner", role, True)
    assert api_key.prefix == key_prefix(key)
    assert api_key.id == ApiKey.create_id(api_key.prefix)
    assert api_key.accepts(key)
    assert not api_key.accepts(key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert not api_key.accepts(key + "x")


@given(keys, keys)
def test_a_key_never_accepts_another_key(first: str, second: str) -> None:
    api_key = ApiKey.issue(name="k", role="viewer", key=first)
    assert api_key.accepts(second) == (first == second)


def test_a_revoked_key_accepts_nothing_and_revoking_again_records_nothing() -> None:
    key = _key()
    api_key = ApiKey.issue(name="k", role="viewer", key=key)
    api_key.revoke()
    api_key.revoke()
    assert (api_key.active, api_key.version) == (False, 2)
    assert not api_key.accepts(key)


@pytest.mark.parametrize(
    "key",
    ["", "pms_", "pms_abc_def", "pms_ABCDEF0123_" + "a" * 43, "xyz_0123456789_" + "a" * 43],
)
def test_malformed_keys_are_refused(key: str) -> None:
    assert key_prefix(key) is None
    with pytest.raises(InvalidValue):
        ApiKey.issue(name="k", role="viewer", key=key)


@pytest.mark.parametrize(("name", "role"), [(" ", "viewer"), ("k", "root")])
def test_a_key_needs_a_name_and_a_known_role(name: str, role: str) -> None:
    with pytest.raises(InvalidValue):
        ApiKey.issue(name=name, role=role, key=_key())


def test_replaying_and_reloading_a_key_give_the_same_state() -> None:
    api_key = ApiKey.issue(name="k", role="manager", key=_key())
    api_key.revoke()
    events = api_key.collect_events()
    assert state_of(replay(ApiKey, events)) == state_of(api_key)
    again = ApiKey.issue(name="k", role="manager", key=_key())
    app = in_memory_application()
    assert state_of(save_and_reload(app, again)) == state_of(again)


def _user(role: str = "admin") -> User:
    return User.register(
        email="ann@example.com", name="Ann", role=role, department=None, password_hash="h"
    )


def test_signup_is_refused_while_disabled_and_makes_viewers_otherwise() -> None:
    with pytest.raises(NotPermitted):
        User.sign_up(signup_enabled=False, email="a@example.com", name="A", password_hash="h")
    user = User.sign_up(signup_enabled=True, email="a@example.com", name="A", password_hash="h")
    assert user.role == "viewer"


def test_users_cannot_change_their_own_role_or_deactivate_themselves() -> None:
    user = _user()
    with pytest.raises(NotPermitted):
        user.change_role("viewer", by=user.id)
    with pytest.raises(NotPermitted):
        user.deactivate(by=user.id)
    assert (user.role, user.active, user.version) == ("admin", True, 1)
    other = uuid.uuid4()
    user.change_role("viewer", by=other)
    user.deactivate(by=other)
    assert (user.role, user.active) == ("viewer", False)
