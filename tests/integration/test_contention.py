"""Concurrent commands of one process on the same aggregates: they save one at a time, so none
fails its version check, and every stock invariant holds whatever the interleaving."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import CanMutateAggregate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import replay

from application.catalogue import CreateProduct, create_product
from application.contention import SaveLocks
from application.context import CommandContext
from application.inventory import (
    AdjustStock,
    ReceiveStock,
    TransferStock,
    adjust_stock,
    receive_stock,
    transfer_stock,
)
from application.locations import CreateLocation, create_location
from application.settings import Settings
from application.store import EventStore, PmsApplication, application_env
from domain.errors import InsufficientStock
from domain.inventory import StockItem
from domain.values import Money

StockEvent = CanMutateAggregate[UUID]
CONTEXT = CommandContext.system("contention-test")
THREADS = 8


@pytest.fixture(scope="module")
def unretried(settings: Settings) -> Iterator[EventStore]:
    """An event store that never retries: any lost version check would surface."""
    opened = EventStore(PmsApplication(env=application_env(settings)), retries=0)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def locations(unretried: EventStore) -> tuple[UUID, UUID]:
    first, second = (
        create_location(unretried, CONTEXT, CreateLocation(code=f"C-{uuid4().hex[:8]}", name=n))
        for n in ("A", "B")
    )
    return first.value.id, second.value.id


def _new_product(store: EventStore) -> UUID:
    command = CreateProduct(sku=f"C-{uuid4().hex}", name="Contended", price=Money(100, "EUR"))
    return create_product(store, CONTEXT, command).value.id


@dataclass(frozen=True)
class Move:
    """One stock command: `into`/`out_of` are location indexes (0 or 1), None for outside."""

    quantity: int
    into: int | None
    out_of: int | None


moves = st.one_of(
    st.builds(Move, st.integers(1, 9), st.sampled_from([0, 1]), st.none()),
    st.builds(Move, st.integers(1, 9), st.none(), st.sampled_from([0, 1])),
    st.builds(lambda n, a: Move(n, 1 - a, a), st.integers(1, 9), st.sampled_from([0, 1])),
)


def _run(store: EventStore, product: UUID, places: tuple[UUID, UUID], move: Move) -> bool:
    """Issue the move's command; False when it is refused for lack of stock."""
    try:
        if move.into is not None and move.out_of is not None:
            transfer = TransferStock(product, places[move.out_of], places[move.into], move.quantity)
            transfer_stock(store, CONTEXT, transfer)
        elif move.into is not None:
            receive_stock(store, CONTEXT, ReceiveStock(product, places[move.into], move.quantity))
        else:
            assert move.out_of is not None
            adjust = AdjustStock(product, places[move.out_of], -move.quantity, reason="damaged")
            adjust_stock(store, CONTEXT, adjust)
    except InsufficientStock:
        return False
    return True


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(moves, min_size=2, max_size=40))
def test_concurrent_stock_commands_never_conflict_and_account_for_every_unit(
    unretried: EventStore, locations: tuple[UUID, UUID], batch: list[Move]
) -> None:
    product = _new_product(unretried)
    with ThreadPoolExecutor(THREADS) as pool:
        accepted = list(pool.map(lambda m: _run(unretried, product, locations, m), batch))

    expected = [0, 0]
    for move, done in zip(batch, accepted, strict=True):
        if done and move.into is not None:
            expected[move.into] += move.quantity
        if done and move.out_of is not None:
            expected[move.out_of] -= move.quantity
    for index, location in enumerate(locations):
        item_id = StockItem.create_id(product, location)
        history = list(unretried.app.repository.event_store.get(item_id))
        on_hand = [0] + [
            replay(StockItem, cast(list[StockEvent], history[: n + 1])).on_hand
            for n in range(len(history))
        ]
        assert min(on_hand) >= 0
        assert on_hand[-1] == expected[index]


def test_opposite_transfers_of_one_process_neither_deadlock_nor_conflict(
    unretried: EventStore, locations: tuple[UUID, UUID]
) -> None:
    product = _new_product(unretried)
    for location in locations:
        receive_stock(unretried, CONTEXT, ReceiveStock(product, location, 100))
    there, back = Move(1, 1, 0), Move(1, 0, 1)
    with ThreadPoolExecutor(THREADS) as pool:
        done = [
            pool.submit(_run, unretried, product, locations, there if n % 2 else back)
            for n in range(64)
        ]
        assert all(future.result(timeout=60) for future in done)
    for location in locations:
        item: StockItem = unretried.app.repository.get(StockItem.create_id(product, location))
        assert item.on_hand == 100
        assert item.version == 2 + 64  # opened, received, then one event per transfer


def test_a_stripe_released_since_the_decision_asks_for_a_new_one() -> None:
    locks = SaveLocks(stripes=4)
    busy, quiet = UUID(int=1), UUID(int=2)
    seen = locks.releases()
    with locks.holding([busy], locks.releases()) as untouched:
        assert untouched
    with locks.holding([quiet], seen) as untouched:
        assert untouched
    with locks.holding([quiet, busy], seen) as untouched:
        assert not untouched


def test_a_command_waits_for_the_holder_of_its_stripe() -> None:
    locks = SaveLocks(stripes=4)
    entered, leave = threading.Event(), threading.Event()
    order: list[str] = []

    def holder() -> None:
        with locks.holding([UUID(int=3)], locks.releases()):
            entered.set()
            leave.wait(5)
            order.append("holder")

    thread = threading.Thread(target=holder)
    thread.start()
    entered.wait(5)
    seen = locks.releases()
    threading.Timer(0.05, leave.set).start()
    with locks.holding([UUID(int=7)], seen) as untouched:  # 7 % 4 == 3: the same stripe
        order.append("waiter")
    thread.join()
    assert order == ["holder", "waiter"]
    assert not untouched
