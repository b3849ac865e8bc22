"""API keys for integrations: a role as scope, stored only as a hash, revocable."""

from __future__ import annotations

import hashlib
import hmac
import re
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue
from domain.identity import check_role
from domain.values import required_text

_NAMESPACE = uuid5(NAMESPACE_URL, "https://pms.example/api-keys")

# pms_<10 hex: public prefix, names the key>_<43 url-safe chars: 256 random bits>
PREFIX_LENGTH = 10
_KEY = re.compile(r"^pms_([0-9a-f]{10})_([A-Za-z0-9_-]{43})$")


def compose_key(prefix: str, secret: str) -> str:
    """The key as the client sends it."""
    return f"pms_{prefix}_{secret}"


def key_prefix(key: str) -> str | None:
    """The public prefix of a well-formed key, else None."""
    match = _KEY.match(key)
    return match.group(1) if match else None


def hash_key(key: str) -> str:
    """What we store instead of the key: a high-entropy secret needs no slow KDF."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(Aggregate):
    """A credential for an integration; its id follows from its prefix, so lookup is direct."""

    class Issued(Aggregate.Created):
        name: str
        role: str
        prefix: str
        key_hash: str

    @event(Issued)
    def __init__(self, name: str, role: str, prefix: str, key_hash: str) -> None:
        self.name = name
        self.role = role
        self.prefix = prefix
        self.key_hash = key_hash
        self.active = True

    @staticmethod
    def create_id(prefix: str) -> UUID:
        """The id of the key with this prefix."""
        return uuid5(_NAMESPACE, prefix)

    @classmethod
    def issue(cls, *, name: str, role: str, key: str) -> ApiKey:
        """A new active key; only the hash of `key` is kept."""
        prefix = key_prefix(key)
        if prefix is None:
            raise InvalidValue("key", "not a well-formed API key")
        return cls(
            name=required_text(name, "name"),
            role=check_role(role),
            prefix=prefix,
            key_hash=hash_key(key),
        )

    class Revoked(Aggregate.Event):
        def apply(self, key: ApiKey) -> None:
            key.active = False

    def revoke(self) -> None:
        """The key stops working at once; revoking twice changes nothing."""
        if self.active:
            self.trigger_event(self.Revoked)

    def accepts(self, key: str) -> bool:
        """Whether `key` is this active key (constant-time comparison of hashes)."""
        return self.active and hmac.compare_digest(hash_key(key), self.key_hash)
