"""Users who sign in, with a role that decides what they may do."""

from __future__ import annotations

import re
from typing import Literal, get_args

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, InvalidValue
from domain.values import required_text

# One @, no whitespace, a dotted domain whose labels are not empty.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")

Role = Literal["admin", "manager", "employee", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)


def check_role(role: str) -> Role:
    """Return the role if it is one we know."""
    for known in ROLES:
        if role == known:
            return known
    raise InvalidValue("role", f"must be one of {', '.join(ROLES)}")


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively."""
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidValue("email", "not a valid email address")
    return email


class User(Aggregate):
    """A person with a login; the password is stored only as a KDF hash."""

    class Registered(Aggregate.Created):
        email: str
        name: str
        role: str
        department: str | None
        password_hash: str

    @event(Registered)
    def __init__(
        self, email: str, name: str, role: str, department: str | None, password_hash: str
    ) -> None:
        self.email = email
        self.name = name
        self.role = role
        self.department = department
        self.password_hash = password_hash
        self.active = True

    @classmethod
    def register(
        cls, *, email: str, name: str, role: str, department: str | None, password_hash: str
    ) -> User:
        """A new active user; `email` must already be normalised and claimed."""
        return cls(
            email=email,
            name=required_text(name, "name"),
            role=check_role(role),
            department=department,
            password_hash=password_hash,
        )

    class RoleChanged(Aggregate.Event):
        role: str

        def apply(self, user: User) -> None:
            user.role = self.role

    class PasswordChanged(Aggregate.Event):
        password_hash: str

        def apply(self, user: User) -> None:
            user.password_hash = self.password_hash

    class Deactivated(Aggregate.Event):
        def apply(self, user: User) -> None:
            user.active = False

    def change_role(self, role: str) -> None:
        """Give the user another role."""
        self._check_active()
        role = check_role(role)
        if role != self.role:
            self.trigger_event(self.RoleChanged, role=role)

    def change_password(self, password_hash: str) -> None:
        """Store a new password hash."""
        self._check_active()
        self.trigger_event(self.PasswordChanged, password_hash=password_hash)

    def deactivate(self) -> None:
        """The user can no longer sign in."""
        if self.active:
            self.trigger_event(self.Deactivated)

    def _check_active(self) -> None:
        if not self.active:
            raise IllegalTransition("the user is deactivated")
