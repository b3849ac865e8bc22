"""User: known roles, normalised emails, and deactivated users that cannot change."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    blank_text,
    emails,
    in_memory_application,
    padded,
    replay,
    save_and_reload,
    state_of,
    whitespace,
)

from domain.errors import IllegalTransition, InvalidValue
from domain.identity import ROLES, User, check_role, normalise_email

roles = st.sampled_from(ROLES)


def _user(role: str = "employee") -> User:
    return User.register(
        email="ann@example.com",
        name="Ann",
        role=role,
        department=None,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$old",
    )


def test_the_roles_are_admin_manager_employee_and_viewer() -> None:
    assert set(ROLES) == {"admin", "manager", "employee", "viewer"}


@given(roles)
def test_a_known_role_passes_the_role_check(role: str) -> None:
    assert check_role(role) == role


@given(st.text(max_size=12).filter(lambda role: role not in ROLES))
def test_an_unknown_role_is_refused(role: str) -> None:
    with pytest.raises(InvalidValue) as error:
        check_role(role)
    assert error.value.field_name == "role"


@pytest.mark.parametrize("role", ["Admin", "ADMIN", " admin", "admin ", "superuser", ""])
def test_roles_are_matched_exactly(role: str) -> None:
    with pytest.raises(InvalidValue):
        check_role(role)


@given(emails, whitespace, whitespace)
def test_emails_are_trimmed_and_compared_case_insensitively(
    email: str, before: str, after: str
) -> None:
    normalised = normalise_email(before + email + after)
    assert normalised == email.lower()
    assert normalise_email(email.upper()) == normalise_email(email.lower()) == normalised
    assert normalise_email(normalised) == normalised


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "ann",
        "ann@",
        "@example.com",
        "ann@localhost",
        "ann smith@example.com",
        "ann@example .com",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_malformed_emails_are_refused(email: str) -> None:
    with pytest.raises(InvalidValue) as error:
        normalise_email(email)
    assert error.value.field_name == "email"


def test_a_registered_user_is_active_with_a_trimmed_name() -> None:
    user = User.register(
        email="ann@example.com", name=" Ann ", role="viewer", department="Sales", password_hash="h"
    )
    assert (user.active, user.name, user.role, user.department) == (True, "Ann", "viewer", "Sales")


@given(blank_text)
def test_a_user_needs_a_name(name: str) -> None:
    with pytest.raises(InvalidValue) as error:
        User.register(
            email="ann@example.com", name=name, role="viewer", department=None, password_hash="h"
        )
    assert error.value.field_name == "name"


def test_a_user_cannot_be_registered_with_an_unknown_role() -> None:
    with pytest.raises(InvalidValue):
        _user(role="owner")


@given(roles, roles)
def test_changing_to_the_current_role_records_nothing(first: str, second: str) -> None:
    user = _user(first)
    user.change_role(second)
    assert user.role == second
    assert user.version == (1 if first == second else 2)


def test_changing_to_an_unknown_role_is_refused() -> None:
    user = _user()
    with pytest.raises(InvalidValue):
        user.change_role("owner")
    assert (user.role, user.version) == ("employee", 1)


def test_a_password_change_stores_the_new_hash() -> None:
    user = _user()
    user.change_password("$argon2id$new")
    assert (user.password_hash, user.version) == ("$argon2id$new", 2)


@pytest.mark.parametrize(
    "change",
    [
        lambda user: user.change_role("admin"),
        lambda user: user.change_role("no-such-role"),
        lambda user: user.change_password("$argon2id$new"),
    ],
    ids=["role", "unknown-role", "password"],
)
def test_a_deactivated_user_refuses_changes(change: Callable[[User], None]) -> None:
    user = _user()
    user.deactivate()
    before = state_of(user)
    with pytest.raises(IllegalTransition):
        change(user)
    assert state_of(user) == before
    assert len(user.pending_events) == 2


def test_deactivating_twice_records_one_event() -> None:
    user = _user()
    user.deactivate()
    user.deactivate()
    assert user.active is False
    assert [type(e) for e in user.pending_events] == [User.Registered, User.Deactivated]


@given(roles, padded())
def test_replaying_a_users_events_gives_the_same_state(role: str, password_hash: str) -> None:
    user = _user()
    user.change_role(role)
    user.change_password(password_hash)
    user.deactivate()
    assert state_of(replay(User, user.pending_events)) == state_of(user)
    assert save_and_reload(in_memory_application(), user) == user
