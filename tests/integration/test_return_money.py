"""Returns move money only as their resolution allows, once, and never more than the order's
total: through the real command handlers on the session's event store."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import pytest

from application.catalogue import CreateProduct, create_product
from application.company import ChangeSettings, change_settings, read_settings
from application.context import CommandContext
from application.customers import CreateCustomer, create_customer
from application.inventory import ReceiveStock, receive_stock, stock_item_for
from application.locations import CreateLocation, create_location
from application.orders import (
    ChangeOrderStatus,
    OrderItem,
    PlaceOrder,
    ShipOrder,
    change_order_status,
    place_order,
    ship_order,
)
from application.payments import (
    CapturePayment,
    Checkout,
    RefundPayment,
    capture_payment,
    checkout,
    confirm_checkout,
    refund_payment,
)
from application.returns import (
    ExchangeReturn,
    ReceiveReturn,
    RequestReturn,
    ReturnLine,
    approve_return,
    exchange_return,
    receive_return,
    refund_return,
    request_return,
)
from application.settings import Settings
from application.store import EventStore, UnitOfWork
from domain.errors import Conflict, DomainError, IllegalTransition
from domain.orders import Order
from domain.payments import Payment, RefundExceedsCaptured
from domain.returns import Return
from domain.values import Money

CONTEXT = CommandContext.system("test")


@pytest.fixture(scope="module")
def store(fresh_settings: Callable[[], Settings]) -> Iterator[EventStore]:
    """A database of this module's own: no process manager of the session's workers reacts to
    its returns, so the tests choose who refunds what and when."""
    opened = EventStore.connect(fresh_settings())
    yield opened
    opened.close()


@pytest.fixture
def taxed(store: EventStore) -> Iterator[None]:
    """A tax rate that rounds (7 %), the company's settings restored afterwards."""
    before = read_settings(store)
    change_settings(store, CONTEXT, _settings(before, 700))
    yield
    change_settings(store, CONTEXT, _settings(before, before.tax_rate_basis_points))


def _settings(current: Any, rate: int) -> ChangeSettings:
    return ChangeSettings(
        company_name=current.company_name,
        default_currency="EUR",
        tax_rate_basis_points=rate,
        timezone=current.timezone,
        signup_enabled=current.signup_enabled,
        low_stock_threshold=current.low_stock_threshold,
    )


@dataclass
class Sale:
    """A shipped, paid order of `quantity` units of one product."""

    store: EventStore
    product: UUID
    location: UUID
    order: UUID
    payment: UUID

    def run(self, handler: Callable[..., Any], *args: Any) -> Any:
        return handler(self.store, CONTEXT, *args).value

    def load(self, cls: type[Any], aggregate_id: UUID) -> Any:
        return UnitOfWork(self.store.app).get(cls, aggregate_id)

    def approved(self, quantity: int, resolution: Literal["refund", "exchange"]) -> UUID:
        """A return of `quantity` units, approved, nothing received yet."""
        line = ReturnLine(
            product_id=self.product, quantity=quantity, reason="too big", condition="sellable"
        )
        command = RequestReturn(
            order_id=self.order, items=[line], resolution=resolution, location_id=self.location
        )
        rma: Return = self.run(request_return, command)
        self.run(approve_return, rma.id)
        return rma.id

    def returned(self, quantity: int, resolution: Literal["refund", "exchange"]) -> UUID:
        """A return of `quantity` units, approved and received."""
        rma = self.approved(quantity, resolution)
        self.run(receive_return, rma, ReceiveReturn())
        return rma

    def refunded(self) -> int:
        payment: Payment = self.load(Payment, self.payment)
        return payment.refunded.amount


def _sale(store: EventStore, price: int, quantity: int) -> Sale:
    def run(handler: Callable[..., Any], *args: Any) -> Any:
        return handler(store, CONTEXT, *args).value

    product = run(
        create_product,
        CreateProduct(sku=f"RM-{secrets.token_hex(4)}", name="Thing", price=Money(price, "EUR")),
    ).id
    location = run(create_location, CreateLocation(code=f"RM{secrets.token_hex(3)}", name="RM")).id
    customer = run(
        create_customer,
        CreateCustomer(email=f"rm-{secrets.token_hex(4)}@example.com", name="RM"),
    ).id
    run(receive_stock, ReceiveStock(product_id=product, location_id=location, quantity=50))
    order = run(
        place_order,
        PlaceOrder(
            customer_id=customer,
            location_id=location,
            items=[OrderItem(product_id=product, quantity=quantity)],
            shipping_address="1 Return Road",
        ),
    ).id
    run(checkout, order, Checkout(method="card"), None)
    payment = run(confirm_checkout, order, None).id
    run(capture_payment, payment, CapturePayment(), None)
    with contextlib.suppress(IllegalTransition):  # confirmed once paid, by the payments
        run(change_order_status, order, ChangeOrderStatus(status="confirmed"))
    run(ship_order, order, ShipOrder(carrier="", tracking_number=""))
    return Sale(store, product, location, order, payment)


def test_an_exchange_is_never_also_refunded(store: EventStore) -> None:
    sale = _sale(store, 1000, 2)
    rma = sale.returned(1, "exchange")
    with pytest.raises(IllegalTransition):
        sale.run(refund_return, rma, None)  # before the exchange
    assert sale.refunded() == 0
    sale.run(exchange_return, rma, ExchangeReturn(), None)
    with pytest.raises(IllegalTransition):
        sale.run(refund_return, rma, None)  # after it
    assert sale.refunded() == 0  # the same product again: nothing to pay back


def test_a_refund_return_cannot_be_exchanged_and_no_order_is_placed(store: EventStore) -> None:
    sale = _sale(store, 1000, 2)
    rma = sale.returned(1, "refund")
    stock = UnitOfWork(store.app)
    reserved = stock_item_for(stock, sale.product, sale.location).reserved
    with pytest.raises(IllegalTransition):
        sale.run(exchange_return, rma, ExchangeReturn(), None)
    again = UnitOfWork(store.app)
    assert stock_item_for(again, sale.product, sale.location).reserved == reserved
    assert sale.load(Return, rma).status == "received"


def test_returns_of_one_unit_each_refund_exactly_the_total(store: EventStore, taxed: None) -> None:
    sale = _sale(store, 250, 2)  # 500 + 35 tax: one unit alone would be 250 + 17.5 → 268
    order: Order = sale.load(Order, sale.order)
    assert order.total.amount == 535
    first, second = sale.returned(1, "refund"), sale.returned(1, "refund")
    sale.run(refund_return, first, None)
    sale.run(refund_return, second, None)
    assert [sale.load(Return, r).refunded_amount for r in (first, second)] == [268, 267]
    assert sale.refunded() == 535
    assert {sale.load(Return, r).status for r in (first, second)} == {"closed"}


def _at_once(*calls: Callable[[], Any]) -> list[BaseException | None]:
    """Run the calls in threads released together; what each raised, if anything."""
    start = threading.Barrier(len(calls))
    failures: list[BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            calls[index]()
        except DomainError as error:
            failures[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_two_refunds_of_one_return_at_once_pay_and_record_once(store: EventStore) -> None:
    sale = _sale(store, 1000, 3)
    rma = sale.returned(2, "refund")
    failures = _at_once(*[lambda: sale.run(refund_return, rma, None)] * 4)
    assert all(f is None or isinstance(f, Conflict) for f in failures), failures
    assert sale.refunded() == 2000
    assert sale.load(Return, rma).refunded_amount == 2000
    order: Order = sale.load(Order, sale.order)
    assert order.credited[rma] == {sale.product: 2}


def test_two_exchanges_of_one_return_at_once_place_one_order(store: EventStore) -> None:
    sale = _sale(store, 1000, 2)
    rma = sale.returned(1, "exchange")
    before = stock_item_for(UnitOfWork(store.app), sale.product, sale.location).reserved
    failures = _at_once(*[lambda: sale.run(exchange_return, rma, ExchangeReturn(), None)] * 3)
    assert sum(f is None for f in failures) == 1, failures
    after = stock_item_for(UnitOfWork(store.app), sale.product, sale.location).reserved
    assert after == before + 1  # one replacement unit reserved, not three
    assert sale.load(Return, rma).status == "closed"


def test_refunds_racing_receipts_pay_every_unit_once(store: EventStore) -> None:
    sale = _sale(store, 1000, 4)
    rma = sale.approved(4, "refund")

    def receive(units: int) -> Callable[[], Any]:
        items = [OrderItem(product_id=sale.product, quantity=units)]
        return lambda: sale.run(receive_return, rma, ReceiveReturn(items=items))

    def refund() -> Any:
        return sale.run(refund_return, rma, None)

    receive(1)()
    failures = _at_once(refund, receive(1), refund, receive(2), refund)
    assert all(f is None or isinstance(f, Conflict | IllegalTransition) for f in failures)
    if sale.load(Return, rma).status != "closed":
        refund()  # the process manager's, for the last receipt
    assert sale.refunded() == 4000
    assert sale.load(Return, rma).refunded_amount == 4000
    assert sale.load(Return, rma).status == "closed"


def test_units_that_arrive_while_a_refund_is_under_way_are_refunded_with_it(
    store: EventStore,
) -> None:
    sale = _sale(store, 1000, 3)
    rma = sale.approved(3, "refund")
    first = [OrderItem(product_id=sale.product, quantity=1)]
    sale.run(receive_return, rma, ReceiveReturn(items=first))

    def started_then_stopped(unit: UnitOfWork) -> Return:
        """A refund of the first unit decided and saved by a call that then stopped."""
        found = unit.get(Return, rma)
        order = unit.get(Order, found.order_id)
        amount = order.credit_return(found.id, found.received, found.refunded_amount)
        found.start_refund({sale.payment: amount.amount})
        return found

    store.execute(CONTEXT, started_then_stopped)
    sale.run(receive_return, rma, ReceiveReturn())  # the other two arrive meanwhile
    sale.run(refund_return, rma, None)  # the process manager's, for their arrival
    assert sale.refunded() == 3000
    assert sale.load(Return, rma).refunded_amount == 3000
    assert sale.load(Return, rma).status == "closed"


def test_a_refund_the_payments_cannot_cover_is_refused_before_anything_is_saved(
    store: EventStore,
) -> None:
    sale = _sale(store, 1000, 2)
    goodwill = RefundPayment(amount=Money(1500, "EUR"), reason="goodwill")
    sale.run(refund_payment, sale.payment, goodwill, None)  # 500 left to give back
    rma = sale.returned(1, "refund")
    with pytest.raises(RefundExceedsCaptured):
        sale.run(refund_return, rma, None)
    assert sale.load(Return, rma).refund_under_way is None
    assert rma not in sale.load(Order, sale.order).credited
    assert sale.refunded() == 1500
