"""StockItem: receipts and adjustments keep on hand and available non-negative."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

import pytest
from eventsourcing.domain import CanMutateAggregate
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from strategies import (
    in_memory_application,
    money,
    replay,
    save_and_reload,
    state_of,
)

from domain.errors import DomainError, InsufficientStock, InvalidValue
from domain.inventory import StockItem
from domain.values import MAX_AMOUNT, MAX_QUANTITY, Money

E = TypeVar("E", bound=DomainError)

TOO_MANY = MAX_QUANTITY + 1
# Mostly usable reasons, sometimes blank ones, which every movement must refuse.
reasons = st.sampled_from(["cycle count", " damaged\t", "found", "supplier credit", "", " \t"])
documents = st.one_of(st.none(), st.sampled_from(["GRN-000001", "PO-000123"]))
receipt_quantities = st.one_of(
    st.integers(1, 100), st.sampled_from([0, -1, TOO_MANY, 10**4, MAX_QUANTITY])
)
adjustment_quantities = st.one_of(
    st.integers(-150, 150), st.sampled_from([-TOO_MANY, TOO_MANY, MAX_QUANTITY])
)
unit_costs = money(
    amounts=st.one_of(st.integers(-5, 10_000), st.sampled_from([10**6, 10**11, MAX_AMOUNT]))
)


def _invalid_receipt_field(quantity: int, unit_cost: Money, reason: str) -> str | None:
    """The field a receipt is refused for, in the order the rules are checked; None if valid."""
    if not 0 < quantity <= MAX_QUANTITY:
        return "quantity"
    if unit_cost.amount < 0 or quantity * unit_cost.amount > MAX_AMOUNT:
        return "unitCost"
    if not reason.strip():
        return "reason"
    return None


class StockItemCommands(RuleBasedStateMachine):
    """Random receipts and adjustments on one stock item, against a running total."""

    def __init__(self) -> None:
        super().__init__()
        self.app = in_memory_application()
        self.item: StockItem
        self.saved: list[CanMutateAggregate[UUID]] = []
        self.expected_on_hand = 0
        self.expected_version = 1

    @initialize(product_id=st.uuids(), location_id=st.uuids())
    def open(self, product_id: UUID, location_id: UUID) -> None:
        self.item = StockItem.open(product_id, location_id)
        assert self.item.id == StockItem.create_id(product_id, location_id)

    @rule(quantity=receipt_quantities, unit_cost=unit_costs, reason=reasons, document=documents)
    def receive(self, quantity: int, unit_cost: Money, reason: str, document: str | None) -> None:
        invalid_field = _invalid_receipt_field(quantity, unit_cost, reason)
        if invalid_field is not None:
            with self.refused(InvalidValue) as error:
                self.item.receive(quantity, unit_cost, reason=reason, document=document)
            assert error.value.field_name == invalid_field
            return
        self.item.receive(quantity, unit_cost, reason=reason, document=document)
        received = self.accepted(StockItem.Received, quantity)
        assert (received.unit_cost, received.reason) == (unit_cost, reason.strip())
        assert received.document == document

    @rule(quantity=st.integers(1, 100), unit_cost=money())
    def receive_with_the_default_reason(self, quantity: int, unit_cost: Money) -> None:
        self.item.receive(quantity, unit_cost, document=None)
        assert self.accepted(StockItem.Received, quantity).reason == "receipt"

    @rule(quantity=adjustment_quantities, reason=reasons, document=documents)
    def adjust(self, quantity: int, reason: str, document: str | None) -> None:
        self.check_adjustment(quantity, reason, document)

    @precondition(lambda self: 0 < self.expected_on_hand <= MAX_QUANTITY)
    @rule(document=documents)
    def remove_everything_available(self, document: str | None) -> None:
        self.check_adjustment(-self.expected_on_hand, "write-off", document)
        assert self.item.available == 0

    @precondition(lambda self: self.expected_on_hand < MAX_QUANTITY)
    @rule()
    def remove_one_more_than_available(self) -> None:
        self.check_adjustment(-(self.expected_on_hand + 1), "write-off", None)

    @rule()
    def reloading_from_the_store_gives_the_same_state(self) -> None:
        pending = list(self.item.pending_events)
        reloaded = save_and_reload(self.app, self.item)
        self.saved.extend(pending)
        assert not self.item.pending_events
        assert state_of(reloaded) == state_of(self.item)

    def check_adjustment(self, quantity: int, reason: str, document: str | None) -> None:
        """Adjust, expecting exactly the outcome the model predicts."""
        if quantity == 0 or abs(quantity) > MAX_QUANTITY or not reason.strip():
            with self.refused(InvalidValue):
                self.item.adjust(quantity, reason=reason, document=document)
        elif -quantity > self.expected_on_hand:
            with self.refused(InsufficientStock) as error:
                self.item.adjust(quantity, reason=reason, document=document)
            [shortage] = error.value.shortages
            assert (shortage.requested, shortage.available) == (-quantity, self.expected_on_hand)
            assert shortage.product_id == str(self.item.product_id)
            assert shortage.location_id == str(self.item.location_id)
        else:
            self.item.adjust(quantity, reason=reason, document=document)
            adjusted = self.accepted(StockItem.Adjusted, quantity)
            assert (adjusted.reason, adjusted.document) == (reason.strip(), document)

    def accepted(self, event_type: type[Any], quantity: int) -> Any:
        """Count an accepted movement in the model; return the one event it triggered."""
        self.expected_on_hand += quantity
        self.expected_version += 1
        last: Any = self.item.pending_events[-1]
        assert type(last) is event_type
        assert last.originator_version == self.expected_version
        assert last.quantity == quantity
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
    def on_hand_and_available_never_go_negative(self) -> None:
        assert self.item.on_hand >= 0
        assert self.item.reserved >= 0
        assert self.item.available == self.item.on_hand - self.item.reserved >= 0

    @invariant()
    def on_hand_is_the_sum_of_accepted_receipts_and_adjustments(self) -> None:
        assert self.item.on_hand == self.expected_on_hand
        assert self.item.version == self.expected_version

    @invariant()
    def replaying_the_events_gives_the_same_state(self) -> None:
        replayed = replay(StockItem, [*self.saved, *self.item.pending_events])
        assert state_of(replayed) == state_of(self.item)


StockItemCommands.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestRandomStockCommandsKeepTheInvariants = StockItemCommands.TestCase


def test_stock_item_id_follows_from_product_and_location() -> None:
    product_id, location_id = UUID(int=1), UUID(int=2)
    item = StockItem.open(product_id, location_id)
    assert item.id == StockItem.create_id(product_id, location_id)
    assert StockItem.open(product_id, location_id).id == item.id
    assert StockItem.create_id(location_id, product_id) != item.id
    assert StockItem.create_id(product_id, UUID(int=3)) != item.id


def test_a_new_stock_item_is_empty() -> None:
    item = StockItem.open(UUID(int=1), UUID(int=2))
    assert (item.on_hand, item.reserved, item.available, item.version) == (0, 0, 0, 1)
    assert [type(e) for e in item.pending_events] == [StockItem.Opened]


def test_adjusting_an_empty_stock_item_down_reports_the_shortage() -> None:
    item = StockItem.open(UUID(int=1), UUID(int=2))
    with pytest.raises(InsufficientStock) as error:
        item.adjust(-1, reason="count", document=None)
    assert error.value.code == "insufficient-stock"
    assert [(s.requested, s.available) for s in error.value.shortages] == [(1, 0)]


@settings(max_examples=200)
@given(
    on_hand=st.integers(0, 1_000),
    reserved=st.integers(0, 1_000),
    delta=st.integers(-2_000, 2_000).filter(bool),
)
def test_adjustment_never_takes_on_hand_below_reserved(
    on_hand: int, reserved: int, delta: int
) -> None:
    reserved = min(reserved, on_hand)
    item = StockItem.open(UUID(int=1), UUID(int=2))
    if on_hand:
        item.adjust(on_hand, reason="opening balance", document=None)
    # No command reserves stock yet (orders will); stand in for the state a reservation leaves.
    item.reserved = reserved
    if on_hand + delta < reserved:
        with pytest.raises(InsufficientStock) as error:
            item.adjust(delta, reason="count", document=None)
        assert error.value.shortages[0].available == on_hand - reserved
        assert item.on_hand == on_hand
    else:
        item.adjust(delta, reason="count", document=None)
        assert item.on_hand == on_hand + delta >= item.reserved


@given(
    quantity=st.one_of(st.integers(1, MAX_QUANTITY), st.sampled_from([1, 10**4, MAX_QUANTITY])),
    amount=st.one_of(st.integers(0, MAX_AMOUNT), st.sampled_from([0, 10**6, MAX_AMOUNT])),
)
def test_a_receipt_is_worth_at_most_the_largest_amount(quantity: int, amount: int) -> None:
    item = StockItem.open(UUID(int=1), UUID(int=2))
    if quantity * amount <= MAX_AMOUNT:
        item.receive(quantity, Money(amount, "EUR"), document=None)
        assert item.on_hand == quantity
        return
    with pytest.raises(InvalidValue) as error:
        item.receive(quantity, Money(amount, "EUR"), document=None)
    assert error.value.field_name == "unitCost"
    assert (item.on_hand, item.version, len(item.pending_events)) == (0, 1, 1)


def test_the_reviewers_receipt_worth_ten_to_the_nineteen_is_refused() -> None:
    item = StockItem.open(UUID(int=1), UUID(int=2))
    with pytest.raises(InvalidValue) as error:
        item.receive(10_000, Money(MAX_AMOUNT, "EUR"), document=None)
    assert error.value.field_name == "unitCost"
    item.receive(10_000, Money(MAX_AMOUNT // 10_000, "EUR"), document=None)  # worth exactly it
    assert item.on_hand == 10_000
