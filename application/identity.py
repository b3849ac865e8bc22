"""Users: registration, first admin, authentication."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from uuid import UUID

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from application.context import CommandContext
from application.store import EventStore, Outcome, UnitOfWork
from application.uniqueness import claim_key, key_owner
from domain.errors import InvalidValue
from domain.identity import User, normalise_email

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


def hash_password(password: str) -> str:
    """Argon2id hash of a password that meets the policy."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidValue(
            "password", f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    return _hasher.hash(password)


def create_user(store: EventStore, context: CommandContext, command: CreateUser) -> Outcome[User]:
    """Register a user with a unique email."""
    password_hash = hash_password(command.password)  # outside decide: the KDF is slow

    def decide(unit: UnitOfWork) -> User:
        email = normalise_email(command.email)
        user = User.register(
            email=email,
            name=command.name,
            role=command.role,
            department=command.department,
            password_hash=password_hash,
        )
        claim_key(unit, EMAIL_KEY, email, user.id)
        unit.add(user)
        return user

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
    try:
        stored = user.password_hash if user else _dummy_hash()
        _hasher.verify(stored, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        return None
    return user if user is not None and user.active else None
