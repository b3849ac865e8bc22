"""UniqueKey: one owner per natural key; released keys can be claimed again."""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError
from hypothesis import given
from hypothesis import strategies as st
from strategies import emails, in_memory_application, replay, save_and_reload, skus, state_of

from domain.errors import DuplicateKey
from domain.uniqueness import UniqueKey

OWNER = UUID(int=1)
OTHER = UUID(int=2)
# The kinds the application uses; none contains ':', the separator inside the id's name.
kinds = st.sampled_from(["sku", "email", "location-code"])
keys = st.one_of(skus, emails)


def test_claiming_a_key_makes_the_claimant_its_owner() -> None:
    index = UniqueKey(kind="sku", key="SKU-1", owner_id=OWNER)
    assert (index.kind, index.key, index.owner_id, index.version) == ("sku", "SKU-1", OWNER, 1)
    assert index.id == UniqueKey.create_id("sku", "SKU-1")


def test_a_released_key_is_free_and_can_be_reclaimed_by_anyone() -> None:
    index = UniqueKey(kind="sku", key="SKU-1", owner_id=OWNER)
    index.release()
    assert index.owner_id is None
    index.reclaim(OTHER)
    assert index.owner_id == OTHER
    assert [type(e) for e in index.pending_events] == [
        UniqueKey.Claimed,
        UniqueKey.Released,
        UniqueKey.Reclaimed,
    ]


def test_reclaiming_a_taken_key_raises_duplicate_key_and_changes_nothing() -> None:
    index = UniqueKey(kind="email", key="a@example.com", owner_id=OWNER)
    with pytest.raises(DuplicateKey) as error:
        index.reclaim(OTHER)
    assert error.value.code == "duplicate-key"
    assert error.value.extra == {"key": "a@example.com"}
    assert (index.owner_id, index.version, len(index.pending_events)) == (OWNER, 1, 1)


def test_the_owner_reclaiming_its_own_key_records_nothing() -> None:
    index = UniqueKey(kind="sku", key="SKU-1", owner_id=OWNER)
    index.reclaim(OWNER)
    assert (index.owner_id, index.version) == (OWNER, 1)


def test_releasing_a_free_key_records_nothing() -> None:
    index = UniqueKey(kind="sku", key="SKU-1", owner_id=OWNER)
    index.release()
    index.release()
    assert index.version == 2


@given(kinds, keys)
def test_the_id_is_the_same_for_the_same_kind_and_key(kind: str, key: str) -> None:
    assert UniqueKey.create_id(kind, key) == UniqueKey.create_id(kind, key)
    assert UniqueKey(kind=kind, key=key, owner_id=OWNER).id == UniqueKey.create_id(kind, key)


@given(kinds, kinds, keys)
def test_the_same_key_of_different_kinds_has_different_ids(
    kind: str, other_kind: str, key: str
) -> None:
    same = UniqueKey.create_id(kind, key) == UniqueKey.create_id(other_kind, key)
    assert same == (kind == other_kind)


@given(kinds, keys, keys)
def test_different_keys_of_one_kind_have_different_ids(kind: str, key: str, other: str) -> None:
    same = UniqueKey.create_id(kind, key) == UniqueKey.create_id(kind, other)
    assert same == (key == other)


def test_two_claims_of_one_key_collide_in_the_store() -> None:
    app = in_memory_application()
    app.save(UniqueKey(kind="sku", key="SKU-1", owner_id=OWNER))
    with pytest.raises(IntegrityError):
        app.save(UniqueKey(kind="sku", key="SKU-1", owner_id=OTHER))


@given(st.lists(st.sampled_from([OWNER, OTHER, None]), max_size=8))
def test_claims_and_releases_replay_to_the_same_owner(owners: list[UUID | None]) -> None:
    """Each entry either releases the key (None) or tries to reclaim it for an owner."""
    index = UniqueKey(kind="sku", key="SKU-1", owner_id=OWNER)
    expected: UUID | None = OWNER
    for owner in owners:
        if owner is None:
            index.release()
            expected = None
        elif expected in (None, owner):
            index.reclaim(owner)
            expected = owner
        else:
            with pytest.raises(DuplicateKey):
                index.reclaim(owner)
        assert index.owner_id == expected
    assert state_of(replay(UniqueKey, index.pending_events)) == state_of(index)
    assert save_and_reload(in_memory_application(), index) == index
