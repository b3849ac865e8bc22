"""Natural-key uniqueness (SKU, email, location code) through small index aggregates.

An index aggregate has a uuid5 id derived from the key, so two commands claiming the same key
create the same aggregate at version 1 and the second save fails its version check.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import DuplicateKey

_NAMESPACE = uuid5(NAMESPACE_URL, "https://pms.example/unique-keys")


class UniqueKey(Aggregate):
    """Who owns a natural key; owner None means the key is free again."""

    class Claimed(Aggregate.Created):
        kind: str
        key: str
        owner_id: UUID

    @event(Claimed)
    def __init__(self, kind: str, key: str, owner_id: UUID) -> None:
        self.kind = kind
        self.key = key
        self.owner_id: UUID | None = owner_id

    @staticmethod
    def create_id(kind: str, key: str) -> UUID:
        """The id of the index aggregate for `key` of `kind`."""
        return uuid5(_NAMESPACE, f"{kind}:{key}")

    class Reclaimed(Aggregate.Event):
        owner_id: UUID

        def apply(self, index: UniqueKey) -> None:
            index.owner_id = self.owner_id

    class Released(Aggregate.Event):
        def apply(self, index: UniqueKey) -> None:
            index.owner_id = None

    def reclaim(self, owner_id: UUID) -> None:
        """Take a released key for a new owner."""
        if self.owner_id is not None and self.owner_id != owner_id:
            raise DuplicateKey(f"{self.kind} {self.key!r} is already taken", key=self.key)
        if self.owner_id != owner_id:
            self.trigger_event(self.Reclaimed, owner_id=owner_id)

    def release(self) -> None:
        """Free the key (the owner took another one)."""
        if self.owner_id is not None:
            self.trigger_event(self.Released)
