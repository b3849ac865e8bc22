"""Users who sign in, with a role that decides what they may do."""

from __future__ import annotations

import re
from typing import Literal, get_args
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, IllegalTransition, InvalidValue
from domain.values import required_text

# One @, no whitespace, a dotted domain whose labels are not empty.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")

Role = Literal["admin", "manager", "employee", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)


class NotPermitted(DomainError):
    """A rule of access forbids this (signup closed, changing one's own access)."""

    code = "forbidden"


def check_role(role: str) -> Role:
    """Return the role if it is one we know."""
    for known in ROLES:
        if role == known:
            return known
    raise InvalidValue("role", f"must be one of {', '.join(ROLES)}")


def check_signup_open(signup_enabled: bool) -> None:
    """Self-service signup happens only while the company settings enable it."""
    if not signup_enabled:
        raise NotPermitted("signup is disabled")


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

    @classmethod
    def sign_up(cls, *, signup_enabled: bool, email: str, name: str, password_hash: str) -> User:
        """Self-service registration: only while signup is enabled, and only as a viewer."""
        check_signup_open(signup_enabled)
        return cls.register(
            email=email, name=name, role="viewer", department=None, password_hash=password_hash
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

    def change_role(self, role: str, *, by: UUID | None = None) -> None:
        """Give the user another role (`by`, the user asking, may not change their own)."""
        self._check_active()
        role = check_role(role)
        if by == self.id and role != self.role:
            raise NotPermitted("you cannot change your own role")
        if role != self.role:
            self.trigger_event(self.RoleChanged, role=role)

    def change_password(self, password_hash: str) -> None:
        """Store a new password hash."""
        self._check_active()
        self.trigger_event(self.PasswordChanged, password_hash=password_hash)

    def deactivate(self, *, by: UUID | None = None) -> None:
        """The user can no longer sign in (`by`, the user asking, may not lock themselves out)."""
        if by == self.id:
            raise NotPermitted("you cannot deactivate your own account")
        if self.active:
            self.trigger_event(self.Deactivated)

    def _check_active(self) -> None:
        if not self.active:
            raise IllegalTransition("the user is deactivated")
