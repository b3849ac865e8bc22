"""Claiming natural keys inside a unit of work."""

from __future__ import annotations

from uuid import UUID

from application.store import UnitOfWork
from domain.errors import DuplicateKey
from domain.uniqueness import UniqueKey


def claim_key(unit: UnitOfWork, kind: str, key: str, owner_id: UUID) -> None:
    """Make `owner_id` the owner of `key`, or raise DuplicateKey."""
    index = unit.find(UniqueKey, UniqueKey.create_id(kind, key))
    if index is None:
        unit.add(UniqueKey(kind=kind, key=key, owner_id=owner_id))
        return
    if index.owner_id not in (None, owner_id):
        raise DuplicateKey(f"{kind} {key!r} is already taken", field=kind, key=key)
    index.reclaim(owner_id)


def move_key(unit: UnitOfWork, kind: str, old: str, new: str, owner_id: UUID) -> None:
    """Release `old` and claim `new` for the same owner, atomically."""
    claim_key(unit, kind, new, owner_id)
    previous = unit.find(UniqueKey, UniqueKey.create_id(kind, old))
    if previous is not None and previous.owner_id == owner_id:
        previous.release()


def key_owner(unit: UnitOfWork, kind: str, key: str) -> UUID | None:
    """Who owns `key` now, if anyone."""
    index = unit.find(UniqueKey, UniqueKey.create_id(kind, key))
    return None if index is None else index.owner_id
