"""Users: registration, first admin, authentication, roles, passwords, deactivation."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from application.company import company_settings, read_settings
from application.context import CommandContext
from application.store import EventStore, Outcome, UnitOfWork
from application.uniqueness import claim_key, key_owner
from domain.errors import InvalidValue
from domain.identity import User, check_signup_open, normalise_email

EMAIL_KEY = "email"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both paths cost one KDF run."""
    return _hasher.hash(secrets.token_hex(16))


class CreateUser(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A new user with a role."""

    email: str
    name: str
    password: str
    role: str = "viewer"
    department: str | None = None


class RegisterUser(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Self-service signup (a viewer)."""

    email: str
    name: str
    password: str


class ChangeRole(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Another role for a user."""

    role: str


class ChangePassword(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A user replaces their own password."""

    current_password: str
    new_password: str


def hash_password(password: str) -> str:
    """Argon2id hash of a password that meets the policy."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidValue(
            "password", f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    return _hasher.hash(password)


def _add_user(
    store: EventStore, context: CommandContext, email: str, build: Callable[[UnitOfWork, str], User]
) -> Outcome[User]:
    def decide(unit: UnitOfWork) -> User:
        normalised = normalise_email(email)
        user = build(unit, normalised)
        claim_key(unit, EMAIL_KEY, normalised, user.id)
        unit.add(user)
        return user

    return store.execute(context, decide)


def create_user(store: EventStore, context: CommandContext, command: CreateUser) -> Outcome[User]:
    """Register a user with a unique email."""
    password_hash = hash_password(command.password)  # outside decide: the KDF is slow

    def build(_: UnitOfWork, email: str) -> User:
        return User.register(
            email=email,
            name=command.name,
            role=command.role,
            department=command.department,
            password_hash=password_hash,
        )

    return _add_user(store, context, command.email, build)


def register_user(
    store: EventStore, context: CommandContext, command: RegisterUser
) -> Outcome[User]:
    """Self-service signup as a viewer, while the company settings allow it."""
    check_signup_open(read_settings(store).signup_enabled)  # before paying for the KDF
    password_hash = hash_password(command.password)

    def build(unit: UnitOfWork, email: str) -> User:
        return User.sign_up(
            signup_enabled=company_settings(unit).signup_enabled,
            email=email,
            name=command.name,
            password_hash=password_hash,
        )

    return _add_user(store, context, command.email, build)


def acting_user(context: CommandContext) -> UUID | None:
    """The id of the user behind a command, when a user (not a key or the system) issued it."""
    kind, _, subject = context.actor.partition(":")
    try:
        return UUID(subject) if kind == "user" else None
    except ValueError:
        return None


def change_user_role(
    store: EventStore,
    context: CommandContext,
    user_id: UUID,
    command: ChangeRole,
    *,
    if_match: int | None = None,
) -> Outcome[User]:
    """Give a user another role (not one's own)."""

    def decide(unit: UnitOfWork) -> User:
        user = unit.get(User, user_id, version=if_match)
        user.change_role(command.role, by=acting_user(context))
        return user

    return store.execute(context, decide)


def deactivate_user(
    store: EventStore, context: CommandContext, user_id: UUID, *, if_match: int | None = None
) -> Outcome[User]:
    """Stop a user from signing in (not oneself); the history stays."""

    def decide(unit: UnitOfWork) -> User:
        user = unit.get(User, user_id, version=if_match)
        user.deactivate(by=acting_user(context))
        return user

    return store.execute(context, decide)


def change_password(
    store: EventStore, context: CommandContext, user_id: UUID, command: ChangePassword
) -> Outcome[User]:
    """Replace one's own password, proving the current one first."""
    user = UnitOfWork(store.app).get(User, user_id)
    if not password_matches(user.password_hash, command.current_password):
        raise InvalidValue("currentPassword", "is not your current password")
    password_hash = hash_password(command.new_password)

    def decide(unit: UnitOfWork) -> User:
        found = unit.get(User, user_id)
        found.change_password(password_hash)
        return found

    return store.execute(context, decide)


@dataclass(frozen=True)
class FirstAdmin:
    """The admin account `ensure_admin` found or created."""

    email: str
    password: str | None  # only when it was just created with a generated password
    created: bool


def ensure_admin(store: EventStore, email: str, password: str = "") -> FirstAdmin:
    """Create the first admin unless a user with that email exists."""
    unit = UnitOfWork(store.app)
    if key_owner(unit, EMAIL_KEY, normalise_email(email)) is not None:
        return FirstAdmin(email=email, password=None, created=False)
    generated = password or secrets.token_urlsafe(18)
    command = CreateUser(email=email, name="Administrator", password=generated, role="admin")
    create_user(store, CommandContext.system("bootstrap"), command)
    return FirstAdmin(email=email, password=None if password else generated, created=True)


def find_user(store: EventStore, user_id: UUID) -> User | None:
    """The user with this id, if any."""
    return UnitOfWork(store.app).find(User, user_id)


def authenticate(store: EventStore, email: str, password: str) -> User | None:
    """The active user with these credentials, or None (in constant-ish time)."""
    try:
        email = normalise_email(email)
    except InvalidValue:
        email = ""
    unit = UnitOfWork(store.app)
    owner = key_owner(unit, EMAIL_KEY, email) if email else None
    user = unit.find(User, owner) if owner else None
    matches = password_matches(user.password_hash if user else _dummy_hash(), password)
    return user if matches and user is not None and user.active else None


def password_matches(password_hash: str, password: str) -> bool:
    """Whether `password` is the one behind `password_hash` (argon2's constant-time check)."""
    try:
        return _hasher.verify(password_hash, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        return False
