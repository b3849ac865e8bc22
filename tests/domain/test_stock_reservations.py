"""StockItem reservations: documents hold units, backorders wait, available never goes negative."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

import pytest
from eventsourcing.domain import CanMutateAggregate
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from strategies import in_memory_application, replay, save_and_reload, state_of

from domain.errors import DomainError, InsufficientStock, InvalidValue
from domain.inventory import StockItem
from domain.values import Money

E = TypeVar("E", bound=DomainError)

HERE, ELSEWHERE = UUID(int=10), UUID(int=11)
UNIT_COST = Money(150, "EUR")
# A few documents, so that random commands often meet a document's earlier holding.
documents = st.sampled_from([f"order:{n}" for n in range(1, 5)])
# Zero and negative quantities are in range on purpose: every movement must refuse them.
movement_quantities = st.integers(-1, 40)


@settings(max_examples=150, stateful_step_count=40, deadline=None)
class StockReservationCommands(RuleBasedStateMachine):
    """Random movements and reservations on one stock item, against a ledger kept here."""

    def __init__(self) -> None:
        super().__init__()
        self.app = in_memory_application()
        self.item: StockItem
        self.saved: list[CanMutateAggregate[UUID]] = []
        self.expected_version = 1
        self.receipts = self.adjustments = self.issues = 0
        self.transfers_out = self.transfers_in = self.count_deltas = 0
        self.held: dict[str, int] = {}
        self.backordered: dict[str, int] = {}

    @initialize(product_id=st.uuids())
    def open(self, product_id: UUID) -> None:
        self.item = StockItem.open(product_id, HERE)

    @property
    def expected_on_hand(self) -> int:
        return (
            self.receipts
            + self.adjustments
            - self.issues
            - self.transfers_out
            + self.transfers_in
            + self.count_deltas
        )

    @property
    def expected_available(self) -> int:
        return self.expected_on_hand - sum(self.held.values())

    @rule(quantity=movement_quantities)
    def receive(self, quantity: int) -> None:
        if quantity <= 0:
            with self.refused(InvalidValue):
                self.item.receive(quantity, UNIT_COST, document=None)
            return
        self.item.receive(quantity, UNIT_COST, document="GRN-1")
        self.accepted(StockItem.Received)
        self.receipts += quantity

    @rule(quantity=st.integers(-40, 40))
    def adjust(self, quantity: int) -> None:
        if quantity == 0:
            with self.refused(InvalidValue):
                self.item.adjust(quantity, reason="count", document=None)
        elif -quantity > self.expected_available:
            with self.refused(InsufficientStock) as error:
                self.item.adjust(quantity, reason="damaged", document=None)
            [shortage] = error.value.shortages
            assert (shortage.requested, shortage.available) == (-quantity, self.expected_available)
        else:
            self.item.adjust(quantity, reason="found", document=None)
            self.accepted(StockItem.Adjusted)
            self.adjustments += quantity

    @rule(document=documents, quantity=movement_quantities, allow_backorder=st.booleans())
    def reserve(self, document: str, quantity: int, allow_backorder: bool) -> None:
        covered = min(quantity, self.expected_available)
        if quantity <= 0:
            with self.refused(InvalidValue):
                self.item.reserve(quantity, document=document, allow_backorder=allow_backorder)
        elif covered < quantity and not allow_backorder:
            with self.refused(InsufficientStock) as error:
                self.item.reserve(quantity, document=document)
            [shortage] = error.value.shortages
            assert (shortage.requested, shortage.available) == (quantity, self.expected_available)
        else:
            backordered = self.item.reserve(
                quantity, document=document, allow_backorder=allow_backorder
            )
            reserved = self.accepted(StockItem.Reserved)
            assert backordered == reserved.backordered == quantity - covered
            assert reserved.quantity == covered
            _add(self.held, document, covered)
            _add(self.backordered, document, quantity - covered)

    @rule(document=documents, margin=st.sampled_from([0, 1]), allow_backorder=st.booleans())
    def reserve_at_the_available_limit(
        self, document: str, margin: int, allow_backorder: bool
    ) -> None:
        self.reserve(document, self.expected_available + margin, allow_backorder)

    @rule(document=documents)
    def allocate_backorder(self, document: str) -> None:
        quantity = min(self.backordered.get(document, 0), self.expected_available)
        self.item.allocate_backorder(document=document)
        if quantity:
            assert self.accepted(StockItem.BackorderAllocated).quantity == quantity
            _add(self.held, document, quantity)
            _add(self.backordered, document, -quantity)

    @rule(document=documents)
    def release(self, document: str) -> None:
        held, backordered = self.held.get(document, 0), self.backordered.get(document, 0)
        self.item.release(document=document, reason="order cancelled")
        if held or backordered:
            released = self.accepted(StockItem.Released)
            assert (released.quantity, released.backordered) == (held, backordered)
        self.held.pop(document, None)
        self.backordered.pop(document, None)

    @rule(document=documents, quantity=movement_quantities)
    def issue(self, document: str, quantity: int) -> None:
        if quantity <= 0:
            with self.refused(InvalidValue):
                self.item.issue(quantity, document=document)
        elif quantity > self.held.get(document, 0):
            with self.refused(InsufficientStock):
                self.item.issue(quantity, document=document)
        else:
            self.check_issue(document, quantity)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def issue_everything_a_document_holds(self, data: st.DataObject) -> None:
        document = data.draw(st.sampled_from(sorted(self.held)))
        self.check_issue(document, self.held[document])
        assert document not in self.item.reservations

    def check_issue(self, document: str, quantity: int) -> None:
        self.item.issue(quantity, document=document)
        self.accepted(StockItem.Issued)
        self.issues += quantity
        _add(self.held, document, -quantity)

    @rule(quantity=movement_quantities, to_location_id=st.sampled_from([ELSEWHERE, HERE]))
    def transfer_out(self, quantity: int, to_location_id: UUID) -> None:
        if quantity <= 0 or to_location_id == HERE:
            with self.refused(InvalidValue):
                self.item.transfer_out(quantity, to_location_id=to_location_id, document="TR-1")
        elif quantity > self.expected_available:
            with self.refused(InsufficientStock):
                self.item.transfer_out(quantity, to_location_id=to_location_id, document="TR-1")
        else:
            self.item.transfer_out(quantity, to_location_id=to_location_id, document="TR-1")
            self.accepted(StockItem.TransferredOut)
            self.transfers_out += quantity

    @rule(quantity=movement_quantities)
    def transfer_in(self, quantity: int) -> None:
        if quantity <= 0:
            with self.refused(InvalidValue):
                self.item.transfer_in(quantity, from_location_id=ELSEWHERE, document="TR-2")
            return
        self.item.transfer_in(quantity, from_location_id=ELSEWHERE, document="TR-2")
        self.accepted(StockItem.TransferredIn)
        self.transfers_in += quantity

    @rule(counted=st.integers(-1, 80))
    def count(self, counted: int) -> None:
        self.check_count(counted)

    @rule(margin=st.sampled_from([-1, 0]))
    def count_at_the_reserved_limit(self, margin: int) -> None:
        self.check_count(sum(self.held.values()) + margin)

    def check_count(self, counted: int) -> None:
        if counted < 0:
            with self.refused(InvalidValue):
                self.item.count(counted, document=None)
        elif counted < sum(self.held.values()):
            with self.refused(InsufficientStock):
                self.item.count(counted, document="CNT-1")
        else:
            delta = counted - self.expected_on_hand
            self.item.count(counted, document="CNT-1")
            if delta:
                assert self.accepted(StockItem.Counted).quantity == delta
                self.count_deltas += delta

    @rule()
    def reloading_from_the_store_gives_the_same_state(self) -> None:
        pending = list(self.item.pending_events)
        reloaded = save_and_reload(self.app, self.item)
        self.saved.extend(pending)
        assert state_of(reloaded) == state_of(self.item)

    def accepted(self, event_type: type[Any]) -> Any:
        """The command triggered exactly one event, of `event_type`; return it."""
        self.expected_version += 1
        last: Any = self.item.pending_events[-1]
        assert type(last) is event_type
        assert last.originator_version == self.expected_version
        return last

    @contextmanager
    def refused(self, error_type: type[E]) -> Iterator[pytest.ExceptionInfo[E]]:
        """The command inside must raise `error_type` and change nothing."""
        before = state_of(self.item)
        pending = list(self.item.pending_events)
        with pytest.raises(error_type) as error:
            yield error
        assert state_of(self.item) == before
        assert self.item.pending_events == pending

    @invariant()
    def nothing_goes_negative(self) -> None:
        assert self.item.on_hand >= 0
        assert self.item.reserved >= 0
        assert self.item.available == self.item.on_hand - self.item.reserved >= 0

    @invariant()
    def reserved_is_the_sum_of_positive_holdings(self) -> None:
        assert self.item.reserved == sum(self.item.reservations.values())
        assert all(quantity > 0 for quantity in self.item.reservations.values())
        assert all(quantity > 0 for quantity in self.item.backorders.values())

    @invariant()
    def the_ledger_explains_on_hand_and_every_holding(self) -> None:
        assert self.item.on_hand == self.expected_on_hand
        assert self.item.reservations == self.held
        assert self.item.backorders == self.backordered
        assert self.item.version == self.expected_version

    @invariant()
    def replaying_the_events_gives_the_same_state(self) -> None:
        replayed = replay(StockItem, [*self.saved, *self.item.pending_events])
        assert state_of(replayed) == state_of(self.item)


def _add(held: dict[str, int], document: str, quantity: int) -> None:
    """The model's version of a holding change: zero holdings are not kept."""
    left = held.get(document, 0) + quantity
    if left:
        held[document] = left
    else:
        held.pop(document, None)


TestRandomReservationsKeepTheInvariants = StockReservationCommands.TestCase


def _stocked(on_hand: int) -> StockItem:
    item = StockItem.open(UUID(int=1), HERE)
    item.receive(on_hand, UNIT_COST, document=None)
    return item


def test_reserving_within_available_backorders_nothing() -> None:
    item = _stocked(5)
    assert item.reserve(5, document="order:1") == 0
    assert (item.reserved, item.available, item.reservations) == (5, 0, {"order:1": 5})
    assert item.backorders == {}


def test_a_reservation_beyond_available_is_refused_unless_backorders_are_allowed() -> None:
    item = _stocked(3)
    with pytest.raises(InsufficientStock) as error:
        item.reserve(5, document="order:1")
    assert [(s.requested, s.available) for s in error.value.shortages] == [(5, 3)]
    assert item.reserve(5, document="order:1", allow_backorder=True) == 2
    assert (item.reservations, item.backorders, item.available) == (
        {"order:1": 3},
        {"order:1": 2},
        0,
    )


def test_a_backorder_is_covered_as_far_as_new_stock_goes() -> None:
    item = StockItem.open(UUID(int=1), HERE)
    assert item.reserve(4, document="order:1", allow_backorder=True) == 4
    assert item.reservations == {}
    item.receive(3, UNIT_COST, document=None)
    item.allocate_backorder(document="order:1")
    assert (item.reservations, item.backorders, item.available) == (
        {"order:1": 3},
        {"order:1": 1},
        0,
    )
    item.receive(5, UNIT_COST, document=None)
    item.allocate_backorder(document="order:1")
    assert (item.reservations, item.backorders, item.available) == ({"order:1": 4}, {}, 4)


def test_allocating_without_a_backorder_or_without_stock_records_nothing() -> None:
    item = StockItem.open(UUID(int=1), HERE)
    item.reserve(2, document="order:1", allow_backorder=True)
    version = item.version
    item.allocate_backorder(document="order:1")
    item.allocate_backorder(document="order:2")
    assert item.version == version


def test_releasing_gives_back_reserved_and_backordered_units() -> None:
    item = _stocked(2)
    item.reserve(5, document="order:1", allow_backorder=True)
    item.reserve(1, document="order:2", allow_backorder=True)
    item.release(document="order:1", reason="cancelled")
    assert (item.reserved, item.available) == (0, 2)
    assert (item.reservations, item.backorders) == ({}, {"order:2": 1})
    version = item.version
    item.release(document="order:1")
    assert item.version == version


def test_a_document_cannot_issue_units_another_document_reserved() -> None:
    item = _stocked(5)
    item.reserve(5, document="order:1")
    with pytest.raises(InsufficientStock):
        item.issue(1, document="order:2")
    item.issue(2, document="order:1")
    assert (item.on_hand, item.reserved, item.reservations) == (3, 3, {"order:1": 3})


def test_reserved_units_cannot_be_transferred_adjusted_or_counted_away() -> None:
    item = _stocked(5)
    item.reserve(4, document="order:1")
    with pytest.raises(InsufficientStock):
        item.transfer_out(2, to_location_id=ELSEWHERE, document="TR-1")
    with pytest.raises(InsufficientStock):
        item.adjust(-2, reason="damaged", document=None)
    with pytest.raises(InsufficientStock):
        item.count(3, document=None)
    item.count(4, document=None)
    assert (item.on_hand, item.reserved, item.available) == (4, 4, 0)
