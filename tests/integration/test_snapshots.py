"""Snapshots: a stock item loaded from its latest snapshot and the events after it is the item
replayed from all its events; a snapshot that cannot be stored never fails a command."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.domain import Aggregate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import state_of

from application.context import CommandContext
from application.settings import Settings
from application.snapshots import SNAPSHOT_INTERVALS, crosses_interval
from application.store import EventStore, PmsApplication, UnitOfWork, application_env
from domain.catalogue import Product
from domain.customers import Customer
from domain.errors import DomainError
from domain.inventory import StockItem
from domain.values import Money

INTERVAL = 3  # small, so that random histories cross it often, several times within a save


class OftenSnapshotting(PmsApplication):
    """The application with a snapshot every few stock item events (same tables)."""

    name = "pms"
    snapshotting_intervals = {StockItem: INTERVAL}


@pytest.fixture(scope="module")
def often(settings: Settings) -> Iterator[EventStore]:
    opened = EventStore(OftenSnapshotting(env=application_env(settings)))
    yield opened
    opened.close()


Step = Callable[[StockItem], None]
documents = st.sampled_from(["SO-1", "SO-2", "SO-3"])
steps: st.SearchStrategy[Step] = st.one_of(
    st.builds(
        lambda n: lambda item: item.receive(n, Money(100 + n, "EUR"), document="GRN"),
        st.integers(1, 20),
    ),
    st.builds(
        lambda n, d, b: lambda item: item.reserve(n, document=d, allow_backorder=b),
        st.integers(1, 15),
        documents,
        st.booleans(),
    ),
    st.builds(lambda d: lambda item: item.release(document=d), documents),
    st.builds(lambda d: lambda item: item.allocate_backorder(document=d), documents),
    st.builds(lambda n, d: lambda item: item.issue(n, document=d), st.integers(1, 10), documents),
    st.builds(
        lambda n: lambda item: item.adjust(n, reason="found", document=None), st.integers(-5, 5)
    ),
    st.builds(lambda n: lambda item: item.count(n, document="COUNT"), st.integers(0, 60)),
)
saves = st.lists(st.lists(steps, min_size=1, max_size=7), min_size=1, max_size=8)


def _load(store: EventStore, item_id: UUID) -> Aggregate:
    """The item as commands load it: its latest snapshot and the events after it."""
    return store.app.load_many([item_id])[item_id]


def _snapshot_versions(store: EventStore, item_id: UUID) -> list[int]:
    assert store.app.snapshots is not None
    return [s.originator_version for s in store.app.snapshots.get(item_id)]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=saves)
def test_an_item_loaded_from_snapshots_is_the_item_replayed_from_its_events(
    often: EventStore, history: list[list[Step]]
) -> None:
    context = CommandContext.system("test")
    item = StockItem.open(uuid4(), uuid4())
    often.app.save(item)
    expected_snapshots: list[int] = []
    for save in history:

        def decide(unit: UnitOfWork, save: list[Step] = save) -> tuple[int, int]:
            loaded = unit.get(StockItem, item.id)
            before = loaded.version
            for step in save:
                with contextlib.suppress(DomainError):  # refused: no event, go on
                    step(loaded)
            return before, loaded.version

        (before, after) = often.execute(context, decide).value
        if after > before and crosses_interval(before + 1, after, INTERVAL):
            expected_snapshots.append(after)
        replayed: StockItem = often.app.repository.get(item.id)
        assert state_of(_load(often, item.id)) == state_of(replayed)
        assert state_of(UnitOfWork(often.app).get(StockItem, item.id)) == state_of(replayed)
    assert _snapshot_versions(often, item.id) == expected_snapshots[-1:]  # the latest only


def test_a_save_crossing_the_interval_stores_the_saved_state(store: EventStore) -> None:
    item = StockItem.open(uuid4(), uuid4())
    for n in range(150):
        item.receive(1, Money(100, "EUR"), document=f"GRN-{n}")
    interval = SNAPSHOT_INTERVALS[StockItem]
    store.app.save(item)  # versions 1..151: one snapshot, of the state saved
    assert _snapshot_versions(store, item.id) == [151]
    assert state_of(_load(store, item.id)) == state_of(item)
    item.reserve(5, document="SO-1")
    store.app.save(item)  # 152, before the next multiple of the interval: no snapshot
    assert _snapshot_versions(store, item.id) == [151]
    assert state_of(_load(store, item.id))["reserved"] == 5
    for n in range(interval):
        item.receive(1, Money(100, "EUR"), document=f"GRN-more-{n}")
        store.app.save(item)
    latest = (152 + interval) // interval * interval
    assert _snapshot_versions(store, item.id) == [latest]  # the older one is gone
    assert state_of(_load(store, item.id)) == state_of(item)


def test_a_snapshot_that_cannot_be_stored_leaves_the_command_done(
    often: EventStore, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    item = StockItem.open(uuid4(), uuid4())
    often.app.save(item)
    refuse = f"refuse_{item.id.hex}"

    def receive_twice(unit: UnitOfWork) -> None:  # versions 2 and 3: a snapshot is due
        loaded = unit.get(StockItem, item.id)
        loaded.receive(3, Money(100, "EUR"), document="GRN-1")
        loaded.receive(4, Money(100, "EUR"), document="GRN-2")

    with psycopg.connect(settings.database_url, autocommit=True) as connection:
        connection.execute(
            f"ALTER TABLE pms_snapshots ADD CONSTRAINT {refuse}"
            f" CHECK (originator_id <> '{item.id}')"
        )
        try:
            with caplog.at_level(logging.WARNING, logger="application.store"):
                outcome = often.execute(CommandContext.system("test"), receive_twice)
        finally:
            connection.execute(f"ALTER TABLE pms_snapshots DROP CONSTRAINT {refuse}")
    assert outcome.position > 0
    assert "snapshot of" in caplog.text
    assert _snapshot_versions(often, item.id) == []
    loaded = _load(often, item.id)
    assert isinstance(loaded, StockItem)
    assert (loaded.version, loaded.on_hand) == (3, 7)


def test_loading_many_at_once_equals_loading_each(store: EventStore) -> None:
    price, cost = Money(500, "EUR"), Money(200, "EUR")
    product = Product.create(sku=f"L-{uuid4().hex[:8]}", name="P", price=price, cost=cost)
    product.change_details(name="Renamed", description="", category=None, supplier_id=None)
    customer = Customer.register(email=f"{uuid4().hex[:8]}@example.com", name="C")
    snapshotted, fresh = StockItem.open(product.id, uuid4()), StockItem.open(product.id, uuid4())
    for n in range(25):  # snapshots at 10 and 20, then events after the latest
        snapshotted.receive(1, Money(100, "EUR"), document=f"GRN-{n}")
        store.app.save(snapshotted)
    fresh.receive(3, Money(100, "EUR"), document=None)
    store.app.save(product, customer, fresh)
    missing = uuid4()
    ids = [fresh.id, missing, customer.id, snapshotted.id, product.id, snapshotted.id]
    found = store.app.load_many(ids)
    assert sorted(found, key=str) == sorted(set(ids) - {missing}, key=str)
    for aggregate in (product, customer, snapshotted, fresh):
        assert state_of(found[aggregate.id]) == state_of(aggregate)
        assert state_of(found[aggregate.id]) == state_of(store.app.repository.get(aggregate.id))
    assert store.app.load_many([]) == {}


def test_with_the_aggregate_cache_many_load_one_by_one_alike(settings: Settings) -> None:
    cached = EventStore(
        PmsApplication(env={**application_env(settings), "AGGREGATE_CACHE_MAXSIZE": "50"})
    )
    try:
        item = StockItem.open(uuid4(), uuid4())
        for n in range(12):
            item.receive(2, Money(100, "EUR"), document=f"GRN-{n}")
            cached.app.save(item)
        missing = uuid4()
        for _ in range(2):  # the second time from the cache
            found = cached.app.load_many([item.id, missing])
            assert list(found) == [item.id]
            assert state_of(found[item.id]) == state_of(item)
    finally:
        cached.close()


def test_a_unit_of_work_prefetches_what_it_then_gets(store: EventStore) -> None:
    customer = Customer.register(email=f"{uuid4().hex[:8]}@example.com", name="C")
    store.app.save(customer)
    unit, missing = UnitOfWork(store.app), uuid4()
    unit.prefetch([customer.id, missing])
    assert unit.find(Customer, missing) is None
    assert unit.get(Customer, customer.id).version == customer.version
    assert unit.find(StockItem, customer.id) is None  # another class: not found either


def test_the_snapshot_table_is_created_again_without_harm(store: EventStore) -> None:
    store.create_snapshot_table()
    store.create_snapshot_table()


def test_stock_item_snapshot_state_is_pinned() -> None:
    """A snapshot stores the item's attributes: changing them needs `class_version` raised and
    an upcast of older snapshots (application/snapshots.py). This lists what they are today."""
    item = StockItem.open(uuid4(), uuid4())
    state = StockItem.Snapshot.take(item).state
    assert sorted(state) == [
        "_created_on",
        "_modified_on",
        "backorders",
        "location_id",
        "on_hand",
        "product_id",
        "reservations",
        "reserved",
    ]
    assert getattr(StockItem, "class_version", 1) == 1
