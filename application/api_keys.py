"""API keys: issue (the key is shown once), revoke, and recognise a presented key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from uuid import UUID

import msgspec

from application.context import CommandContext
from application.store import EventStore, Outcome, UnitOfWork
from domain.api_keys import PREFIX_LENGTH, ApiKey, compose_key, key_prefix


class CreateApiKey(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A key for an integration, scoped to a role."""

    name: str
    role: str


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its plaintext, which is never stored and never shown again."""

    api_key: ApiKey
    key: str


def create_api_key(
    store: EventStore, context: CommandContext, command: CreateApiKey
) -> Outcome[IssuedKey]:
    """Issue a key with 256 random bits behind a random public prefix."""

    def decide(unit: UnitOfWork) -> IssuedKey:
        # A prefix that is already taken makes the save fail its version check; the retry
        # draws another one.
        key = compose_key(secrets.token_hex(PREFIX_LENGTH // 2), secrets.token_urlsafe(32))
        api_key = ApiKey.issue(name=command.name, role=command.role, key=key)
        unit.add(api_key)
        return IssuedKey(api_key=api_key, key=key)

    return store.execute(context, decide)


def revoke_api_key(
    store: EventStore, context: CommandContext, key_id: UUID, *, if_match: int | None = None
) -> Outcome[ApiKey]:
    """Stop a key from working."""

    def decide(unit: UnitOfWork) -> ApiKey:
        api_key = unit.get(ApiKey, key_id, version=if_match)
        api_key.revoke()
        return api_key

    return store.execute(context, decide)


def authenticate_api_key(store: EventStore, key: str) -> ApiKey | None:
    """The active key `key` names, or None."""
    prefix = key_prefix(key)
    if prefix is None:
        return None
    found = UnitOfWork(store.app).find(ApiKey, ApiKey.create_id(prefix))
    return found if found is not None and found.accepts(key) else None
