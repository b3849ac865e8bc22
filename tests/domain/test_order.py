"""Order: priced lines, tax rounded half up, and the pending → delivered lifecycle."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from math import floor
from typing import Any, TypeVar
from uuid import UUID

import pytest
from eventsourcing.domain import CanMutateAggregate
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from strategies import currencies, in_memory_application, replay, save_and_reload, state_of

from domain.errors import DomainError, IllegalTransition, InvalidValue
from domain.orders import (
    FulfilmentStatus,
    Order,
    OrderLine,
    OrderStatus,
    PaymentStatus,
    ShipmentItem,
    merge_lines,
    tax_on,
)
from domain.values import MAX_AMOUNT, MAX_QUANTITY, Money

E = TypeVar("E", bound=DomainError)

# Few products, so that random line changes sometimes repeat the current lines.
PRODUCTS = [UUID(int=n) for n in range(1, 5)]
NOT_ON_THE_ORDER = UUID(int=999)
ORDER_ID = UUID(int=42)
PAYMENT_STATUSES: list[PaymentStatus] = [
    "unpaid",
    "partially_paid",
    "paid",
    "partially_refunded",
    "refunded",
]
CANCELLABLE: set[OrderStatus] = {"pending", "confirmed", "processing"}
SHIPPABLE: set[OrderStatus] = {"confirmed", "processing"}
tax_rates = st.integers(0, 10_000)
head_starts = st.integers(0, 2)  # lifecycle steps taken right after placing


def _line(product_id: UUID, quantity: int, unit_price: Money) -> OrderLine:
    return OrderLine(
        product_id=product_id,
        sku=f"SKU-{product_id.int}",
        name=f"Product {product_id.int}",
        quantity=quantity,
        unit_price=unit_price,
    )


@st.composite
def order_lines(draw: st.DrawFn, currency: str = "EUR") -> list[OrderLine]:
    """One to three lines, one per product, priced in `currency`."""
    product_ids = draw(st.lists(st.sampled_from(PRODUCTS), min_size=1, max_size=3, unique=True))
    return [
        _line(product_id, draw(st.integers(1, 5)), Money(draw(st.integers(0, 5_000)), currency))
        for product_id in product_ids
    ]


def _place(
    lines: list[OrderLine], tax_rate_basis_points: int = 2_000, order_id: UUID = ORDER_ID
) -> Order:
    return Order.place(
        order_id=order_id,
        order_number="SO-000042",
        customer_id=UUID(int=100),
        location_id=UUID(int=200),
        currency=lines[0].unit_price.currency if lines else "EUR",
        lines=lines,
        shipping_address=" 1 Main Street ",
        tax_rate_basis_points=tax_rate_basis_points,
    )


@settings(max_examples=150, stateful_step_count=40, deadline=None)
class OrderCommands(RuleBasedStateMachine):
    """Random lifecycle commands on one order, against a model of the legal transitions."""

    def __init__(self) -> None:
        super().__init__()
        self.app = in_memory_application()
        self.orders_placed = 0
        self.order: Order

    @initialize(lines=order_lines(), tax_rate=tax_rates, head_start=head_starts)
    def place(self, lines: list[OrderLine], tax_rate: int, head_start: int) -> None:
        self.orders_placed += 1
        self.order = _place(lines, tax_rate, order_id=UUID(int=self.orders_placed))
        assert self.order.shipping_address == "1 Main Street"
        self.saved: list[CanMutateAggregate[UUID]] = []
        self.expected_version = 1
        self.status: OrderStatus = "pending"
        self.payment_status: PaymentStatus = "unpaid"
        self.lines = lines
        self.shipped: dict[UUID, int] = {}
        self.shipments = 0
        # Cancelling is one step from anywhere early; a head start lets short runs get further.
        for step in [self.confirm, self.start_processing][:head_start]:
            step()

    @precondition(lambda self: self.status in {"cancelled", "delivered"})
    @rule(lines=order_lines(), tax_rate=tax_rates, head_start=head_starts)
    def place_the_next_order(self, lines: list[OrderLine], tax_rate: int, head_start: int) -> None:
        self.place(lines, tax_rate, head_start)

    def outstanding(self) -> dict[UUID, int]:
        left = {
            line.product_id: line.quantity - self.shipped.get(line.product_id, 0)
            for line in self.lines
        }
        return {product_id: quantity for product_id, quantity in left.items() if quantity}

    @rule()
    def confirm(self) -> None:
        self.transition(self.order.confirm, {"pending"}, Order.Confirmed, "confirmed")

    @rule()
    def start_processing(self) -> None:
        self.transition(
            self.order.start_processing, {"confirmed"}, Order.ProcessingStarted, "processing"
        )

    @rule()
    def deliver(self) -> None:
        self.transition(self.order.deliver, {"shipped"}, Order.Delivered, "delivered")

    def transition(
        self,
        command: Callable[[], None],
        allowed_from: set[OrderStatus],
        event_type: type[Any],
        to: OrderStatus,
    ) -> None:
        if self.status not in allowed_from:
            with self.refused(IllegalTransition):
                command()
            return
        command()
        self.accepted(event_type)
        self.status = to

    @rule(reason=st.sampled_from(["", " \t", " customer asked "]))
    def cancel(self, reason: str) -> None:
        if self.status not in CANCELLABLE or self.shipped:
            with self.refused(IllegalTransition):
                self.order.cancel(reason)
            return
        self.order.cancel(reason)
        assert self.accepted(Order.Cancelled).reason == (reason.strip() or "cancelled")
        self.status = "cancelled"

    @rule(data=st.data())
    def ship_some(self, data: st.DataObject) -> None:
        outstanding = self.outstanding()
        products = sorted(outstanding) or [line.product_id for line in self.lines]
        chosen = data.draw(st.lists(st.sampled_from(products), min_size=1, unique=True))
        self.check_ship(
            {p: data.draw(st.integers(1, max(outstanding.get(p, 0), 1))) for p in chosen}
        )

    @rule()
    def ship_everything_left(self) -> None:
        self.check_ship(None)

    @rule(data=st.data(), quantity=st.sampled_from([0, -1, 1]))
    def ship_an_impossible_quantity(self, data: st.DataObject, quantity: int) -> None:
        product_id = data.draw(st.sampled_from([line.product_id for line in self.lines]))
        # 1 becomes one more than is left to ship.
        if quantity == 1:
            quantity += self.outstanding().get(product_id, 0)
        self.check_ship({product_id: quantity})

    @rule(quantity=st.integers(1, 3))
    def ship_a_product_not_on_the_order(self, quantity: int) -> None:
        self.check_ship({NOT_ON_THE_ORDER: quantity})

    @rule()
    def ship_nothing(self) -> None:
        self.check_ship({})

    def check_ship(self, items: dict[UUID, int] | None) -> None:
        outstanding = self.outstanding()
        wanted = outstanding if items is None else items
        if self.status not in SHIPPABLE:
            with self.refused(IllegalTransition):
                self.order.ship(items, carrier="DHL", tracking_number="1")
        elif not wanted or any(not 0 < q <= outstanding.get(p, 0) for p, q in wanted.items()):
            with self.refused(InvalidValue):
                self.order.ship(items, carrier="DHL", tracking_number="1")
        else:
            shipment = self.order.ship(items, carrier=" DHL ", tracking_number=" 00340 ")
            dispatched = self.accepted(Order.ShipmentDispatched)
            assert shipment == dispatched.items == [ShipmentItem(p, q) for p, q in wanted.items()]
            assert (dispatched.carrier, dispatched.tracking_number) == ("DHL", "00340")
            self.shipments += 1
            assert dispatched.shipment_number == self.shipments
            for product_id, quantity in wanted.items():
                self.shipped[product_id] = self.shipped.get(product_id, 0) + quantity
            if not self.outstanding():
                self.status = "shipped"

    # Lines in another currency, or none at all, must be refused like at placing.
    @rule(lines=st.one_of(order_lines(), order_lines("USD"), st.just([])))
    def change_lines(self, lines: list[OrderLine]) -> None:
        if self.status != "pending":
            with self.refused(IllegalTransition):
                self.order.change_lines(lines)
        elif not lines or any(line.unit_price.currency != "EUR" for line in lines):
            with self.refused(InvalidValue):
                self.order.change_lines(lines)
        else:
            self.order.change_lines(lines)
            if lines != self.lines:
                self.accepted(Order.LinesChanged)
                self.lines = lines

    @rule()
    def change_to_the_same_lines(self) -> None:
        self.change_lines(list(self.lines))

    @rule(payment_status=st.sampled_from(PAYMENT_STATUSES))
    def record_payment_status(self, payment_status: PaymentStatus) -> None:
        self.order.record_payment_status(payment_status)
        if payment_status != self.payment_status:
            self.accepted(Order.PaymentStatusChanged)
            self.payment_status = payment_status

    @rule()
    def reloading_from_the_store_gives_the_same_state(self) -> None:
        pending = list(self.order.pending_events)
        reloaded = save_and_reload(self.app, self.order)
        self.saved.extend(pending)
        assert state_of(reloaded) == state_of(self.order)

    def accepted(self, event_type: type[Any]) -> Any:
        """The command triggered exactly one event, of `event_type`; return it."""
        self.expected_version += 1
        last: Any = self.order.pending_events[-1]
        assert type(last) is event_type
        assert last.originator_version == self.expected_version
        return last

    @contextmanager
    def refused(self, error_type: type[E]) -> Iterator[None]:
        """The command inside must raise `error_type` and change nothing."""
        before = state_of(self.order)
        pending = list(self.order.pending_events)
        with pytest.raises(error_type):
            yield
        assert state_of(self.order) == before
        assert self.order.pending_events == pending

    @invariant()
    def the_order_follows_the_model(self) -> None:
        assert self.order.status == self.status
        assert self.order.payment_status == self.payment_status
        assert self.order.lines == self.lines
        assert self.order.shipped == self.shipped
        assert self.order.outstanding() == self.outstanding()
        assert self.order.shipment_count == self.shipments
        assert self.order.version == self.expected_version

    @invariant()
    def shipped_never_exceeds_ordered(self) -> None:
        ordered = {line.product_id: line.quantity for line in self.order.lines}
        assert all(0 < q <= ordered[p] for p, q in self.order.shipped.items())

    @invariant()
    def fulfilment_status_follows_from_shipped_quantities(self) -> None:
        expected: FulfilmentStatus = (
            "unfulfilled"
            if not self.shipped
            else "partially_shipped"
            if self.outstanding()
            else "shipped"
        )
        assert self.order.fulfilment_status == expected
        fully_shipped = expected == "shipped"
        assert fully_shipped == (self.order.status in {"shipped", "delivered"})

    @invariant()
    def totals_follow_from_the_lines(self) -> None:
        subtotal = sum(line.unit_price.amount * line.quantity for line in self.lines)
        assert self.order.subtotal == Money(subtotal, "EUR")
        assert self.order.tax == tax_on(self.order.subtotal, self.order.tax_rate_basis_points)
        assert self.order.total == self.order.subtotal + self.order.tax

    @invariant()
    def replaying_the_events_gives_the_same_state(self) -> None:
        replayed = replay(Order, [*self.saved, *self.order.pending_events])
        assert state_of(replayed) == state_of(self.order)


TestRandomOrderCommandsFollowTheLifecycle = OrderCommands.TestCase


def test_a_placed_order_is_pending_unpaid_and_unfulfilled() -> None:
    order = _place([_line(PRODUCTS[0], 2, Money(150, "EUR"))])
    assert (order.status, order.payment_status, order.fulfilment_status) == (
        "pending",
        "unpaid",
        "unfulfilled",
    )
    assert [type(e) for e in order.pending_events] == [Order.Placed]


def test_subtotal_is_unit_price_times_quantity_summed_over_lines() -> None:
    order = _place(
        [_line(PRODUCTS[0], 3, Money(1_999, "EUR")), _line(PRODUCTS[1], 2, Money(250, "EUR"))],
        tax_rate_basis_points=2_000,
    )
    assert order.subtotal == Money(6_497, "EUR")
    assert order.tax == Money(1_299, "EUR")  # 1299.4
    assert order.total == Money(7_796, "EUR")


def test_tax_is_charged_on_the_subtotal_not_rounded_per_line() -> None:
    # Each line alone would be taxed 0.5 → 1; together 10 at 10 % is exactly 1.
    order = _place(
        [_line(PRODUCTS[0], 1, Money(5, "EUR")), _line(PRODUCTS[1], 1, Money(5, "EUR"))],
        tax_rate_basis_points=1_000,
    )
    assert (order.tax, order.total) == (Money(1, "EUR"), Money(11, "EUR"))


@pytest.mark.parametrize(
    ("amount", "rate", "tax"),
    [
        (333, 2_000, 67),  # 66.6
        (5, 1_000, 1),  # 0.5 rounds up
        (15, 1_000, 2),  # 1.5 rounds up
        (4, 1_000, 0),  # 0.4
        (1, 4_999, 0),  # 0.4999
        (333, 0, 0),
        (333, 10_000, 333),
        (0, 2_500, 0),
    ],
)
def test_tax_is_rounded_half_up_to_the_minor_unit(amount: int, rate: int, tax: int) -> None:
    assert tax_on(Money(amount, "EUR"), rate) == Money(tax, "EUR")


@given(currencies, st.integers(0, 10**12), st.integers(0, 10_000))
def test_tax_is_the_exact_product_rounded_half_up(currency: str, amount: int, rate: int) -> None:
    exact = Fraction(amount * rate, 10_000)
    assert tax_on(Money(amount, currency), rate) == Money(floor(exact + Fraction(1, 2)), currency)


def test_merging_sums_duplicate_products_in_first_seen_order() -> None:
    a, b, c = PRODUCTS[:3]
    merged = merge_lines([(b, 1), (a, 2), (b, 3), (c, 1), (a, 1)])
    assert merged == {b: 4, a: 3, c: 1}
    assert list(merged) == [b, a, c]


@given(st.lists(st.tuples(st.sampled_from(PRODUCTS), st.integers(1, 100)), min_size=1))
def test_merging_keeps_the_total_quantity_of_each_product(
    requested: list[tuple[UUID, int]],
) -> None:
    merged = merge_lines(requested)
    assert set(merged) == {product_id for product_id, _ in requested}
    for product_id, quantity in merged.items():
        assert quantity == sum(q for p, q in requested if p == product_id)


def test_merging_refuses_an_empty_order() -> None:
    with pytest.raises(InvalidValue) as error:
        merge_lines([])
    assert error.value.field_name == "items"


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
def test_merging_refuses_out_of_range_quantities(quantity: int) -> None:
    with pytest.raises(InvalidValue) as error:
        merge_lines([(PRODUCTS[0], 1), (PRODUCTS[0], quantity)])
    assert error.value.field_name == "items.quantity"


def test_merging_refuses_duplicates_that_add_up_beyond_the_largest_quantity() -> None:
    with pytest.raises(InvalidValue):
        merge_lines([(PRODUCTS[0], MAX_QUANTITY), (PRODUCTS[0], 1)])


def test_placing_refuses_lines_in_another_currency() -> None:
    lines = [_line(PRODUCTS[0], 1, Money(100, "EUR")), _line(PRODUCTS[1], 1, Money(100, "USD"))]
    with pytest.raises(InvalidValue) as error:
        _place(lines)
    assert error.value.field_name == "currency"


def test_placing_refuses_an_order_without_lines() -> None:
    with pytest.raises(InvalidValue) as error:
        _place([])
    assert error.value.field_name == "items"


@pytest.mark.parametrize("rate", [-1, 10_001, -10_000, 20_000])
def test_placing_refuses_tax_rates_outside_0_to_10000_basis_points(rate: int) -> None:
    with pytest.raises(InvalidValue) as error:
        _place([_line(PRODUCTS[0], 1, Money(100, "EUR"))], tax_rate_basis_points=rate)
    assert error.value.field_name == "taxRate"


@pytest.mark.parametrize("rate", [0, 10_000])
def test_placing_accepts_the_tax_rate_bounds(rate: int) -> None:
    order = _place([_line(PRODUCTS[0], 1, Money(100, "EUR"))], tax_rate_basis_points=rate)
    assert order.tax == Money(rate // 100, "EUR")


def test_an_order_ships_itself_when_the_last_units_leave() -> None:
    a, b = PRODUCTS[:2]
    order = _place([_line(a, 3, Money(100, "EUR")), _line(b, 1, Money(100, "EUR"))])
    order.confirm()
    order.start_processing()
    order.ship({a: 2}, carrier="DHL", tracking_number="1")
    assert (order.status, order.fulfilment_status, order.outstanding()) == (
        "processing",
        "partially_shipped",
        {a: 1, b: 1},
    )
    assert order.ship(None, carrier="DHL", tracking_number="2") == [
        ShipmentItem(a, 1),
        ShipmentItem(b, 1),
    ]
    assert (order.status, order.fulfilment_status, order.shipment_count) == (
        "shipped",
        "shipped",
        2,
    )


def test_an_order_with_shipped_items_cannot_be_cancelled() -> None:
    order = _place([_line(PRODUCTS[0], 2, Money(100, "EUR"))])
    order.confirm()
    order.ship({PRODUCTS[0]: 1}, carrier="DHL", tracking_number="1")
    with pytest.raises(IllegalTransition):
        order.cancel("too late")
    assert order.status == "confirmed"


@pytest.mark.parametrize("quantity", [2, 1], ids=["subtotal", "total-with-tax"])
def test_lines_whose_total_is_beyond_the_largest_amount_are_refused_on_edit(
    quantity: int,
) -> None:
    order = _place([_line(PRODUCTS[0], 1, Money(100, "EUR"))], tax_rate_basis_points=2_000)
    with pytest.raises(InvalidValue):
        order.change_lines([_line(PRODUCTS[0], quantity, Money(MAX_AMOUNT, "EUR"))])
    assert order.lines == [_line(PRODUCTS[0], 1, Money(100, "EUR"))]
    assert order.version == 1


def test_lines_cannot_change_once_confirmed() -> None:
    order = _place([_line(PRODUCTS[0], 2, Money(100, "EUR"))])
    order.confirm()
    with pytest.raises(IllegalTransition):
        order.change_lines([_line(PRODUCTS[0], 3, Money(100, "EUR"))])
    assert order.lines[0].quantity == 2
