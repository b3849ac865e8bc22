"""Random shop histories through the real command handlers: every kind of event the
projections handle, stored with positions and metadata as in production."""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from application.api_keys import CreateApiKey, create_api_key
from application.catalogue import (
    CreateProduct,
    UpdateProduct,
    archive_product,
    create_product,
    publish_product,
    update_product,
)
from application.company import ChangeSettings, change_settings
from application.context import CommandContext
from application.customers import CreateCustomer, UpdateCustomer, create_customer, update_customer
from application.identity import CreateUser, create_user
from application.inventory import (
    AdjustStock,
    CountLine,
    CountStock,
    ReceiveStock,
    TransferStock,
    adjust_stock,
    count_stock,
    receive_stock,
    transfer_stock,
)
from application.locations import CreateLocation, create_location
from application.orders import (
    ChangeOrderLines,
    ChangeOrderStatus,
    OrderItem,
    PlaceOrder,
    ShipOrder,
    change_order_lines,
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
    ReceiveReturn,
    RequestReturn,
    ReturnLine,
    approve_return,
    receive_return,
    refund_return,
    request_return,
)
from application.store import EventStore, UnitOfWork
from domain.errors import DomainError
from domain.orders import Order
from domain.values import Money

Step = tuple[str, int, int, int]  # kind, and three small numbers it picks things with

KINDS = [
    *["product", "location", "customer", "price", "archive", "publish", "rename_customer"],
    *["settings", "user", "api_key"],
    *["receive"] * 4,
    *["adjust", "transfer", "count"] * 2,
    *["order"] * 4,
    *["lines", "confirm", "ship_some", "ship_all", "deliver", "cancel"] * 2,
    *["pay", "refund", "return"],
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]

steps: st.SearchStrategy[Step] = st.tuples(
    st.sampled_from(KINDS), st.integers(0, 7), st.integers(0, 7), st.integers(1, 9)
)


def random_step(rng: random.Random) -> Step:
    """A step drawn from `rng` (for load generators)."""
    return (rng.choice(KINDS), rng.randint(0, 7), rng.randint(0, 7), rng.randint(1, 9))


@dataclass
class Shop:
    """Ids of what the history created so far, and the commands that act on them."""

    store: EventStore
    products: list[UUID] = field(default_factory=list)
    locations: list[UUID] = field(default_factory=list)
    customers: list[UUID] = field(default_factory=list)
    orders: list[UUID] = field(default_factory=list)
    payments: list[UUID] = field(default_factory=list)
    context: CommandContext = field(default_factory=lambda: CommandContext.system("history"))

    def seed(self) -> None:
        """A product, a location and a customer to start from."""
        for kind in ("location", "product", "customer"):
            self.run((kind, 0, 0, 1))

    def run(self, step: Step) -> None:
        """Run one step; a command the domain refuses changes nothing."""
        kind, a, b, n = step
        with contextlib.suppress(DomainError):
            getattr(self, f"_{kind}")(a, b, n)

    def _pick(self, ids: list[UUID], index: int) -> UUID:
        if not ids:
            raise _Nothing("nothing of this kind yet")
        return ids[-1 - index % len(ids)]

    def _do(self, handler: Callable[..., Any], *args: Any) -> Any:
        return handler(self.store, self.context, *args).value

    def _product(self, a: int, b: int, n: int) -> None:
        price, cost = Money(500 + 37 * a, "EUR"), Money(200 + 11 * b, "EUR")
        command = CreateProduct(
            sku=f"H-{secrets.token_hex(4)}",
            name=f"Thing {a}",
            price=price,
            cost=cost,
            reorder_level=n % 4,
            allow_backorder=a % 3 == 0,
        )
        self.products.append(self._do(create_product, command).id)

    def _location(self, a: int, b: int, n: int) -> None:
        command = CreateLocation(code=f"H{secrets.token_hex(3)}", name=f"Place {a}")
        self.locations.append(self._do(create_location, command).id)

    def _customer(self, a: int, b: int, n: int) -> None:
        command = CreateCustomer(email=f"h-{secrets.token_hex(4)}@example.com", name=f"Cust {a}")
        self.customers.append(self._do(create_customer, command).id)

    def _price(self, a: int, b: int, n: int) -> None:
        change = UpdateProduct(price=Money(400 + 50 * n, "EUR"), cost=Money(100 + 30 * b, "EUR"))
        self._do(update_product, self._pick(self.products, a), change)

    def _archive(self, a: int, b: int, n: int) -> None:
        self._do(archive_product, self._pick(self.products, a))

    def _publish(self, a: int, b: int, n: int) -> None:
        self._do(publish_product, self._pick(self.products, a))

    def _rename_customer(self, a: int, b: int, n: int) -> None:
        self._do(update_customer, self._pick(self.customers, a), UpdateCustomer(name=f"New {n}"))

    def _settings(self, a: int, b: int, n: int) -> None:
        zone = ZONES[a % len(ZONES)]
        command = ChangeSettings(
            company_name=f"Shop {b}",
            default_currency="EUR",
            tax_rate_basis_points=500 * (n % 5),
            timezone=zone,
        )
        self._do(change_settings, command)

    def _user(self, a: int, b: int, n: int) -> None:
        email = f"u-{secrets.token_hex(4)}@example.com"
        self._do(create_user, CreateUser(email=email, name="U", password="long-enough-pw"))

    def _api_key(self, a: int, b: int, n: int) -> None:
        self._do(create_api_key, CreateApiKey(name=f"key {a}", role="viewer"))

    def _receive(self, a: int, b: int, n: int) -> None:
        command = ReceiveStock(
            product_id=self._pick(self.products, a),
            location_id=self._pick(self.locations, b),
            quantity=3 * n,
            unit_cost=Money(150 + 45 * a + b, "EUR") if n % 4 else None,
        )
        self._do(receive_stock, command)

    def _adjust(self, a: int, b: int, n: int) -> None:
        quantity = n - 5 or 1
        command = AdjustStock(
            product_id=self._pick(self.products, a),
            location_id=self._pick(self.locations, b),
            quantity=quantity,
            reason="damaged" if quantity < 0 else "found",
        )
        self._do(adjust_stock, command)

    def _transfer(self, a: int, b: int, n: int) -> None:
        command = TransferStock(
            product_id=self._pick(self.products, a),
            from_location_id=self._pick(self.locations, b),
            to_location_id=self._pick(self.locations, b + 1),
            quantity=n,
        )
        self._do(transfer_stock, command)

    def _count(self, a: int, b: int, n: int) -> None:
        line = CountLine(product_id=self._pick(self.products, a), counted=2 * n)
        self._do(count_stock, CountStock(location_id=self._pick(self.locations, b), lines=[line]))

    def _items(self, a: int, n: int) -> list[OrderItem]:
        first = OrderItem(product_id=self._pick(self.products, a), quantity=1 + n % 3)
        if len(self.products) > 1 and n % 2:
            second = OrderItem(product_id=self._pick(self.products, a + 1), quantity=1)
            if second.product_id != first.product_id:
                return [first, second]
        return [first]

    def _order(self, a: int, b: int, n: int) -> None:
        command = PlaceOrder(
            customer_id=self._pick(self.customers, a),
            location_id=self._pick(self.locations, b),
            items=self._items(a, n),
            shipping_address="1 Main St",
        )
        self.orders.append(self._do(place_order, command).id)

    def _lines(self, a: int, b: int, n: int) -> None:
        command = ChangeOrderLines(items=self._items(b, n))
        self._do(change_order_lines, self._pick(self.orders, a), command)

    def _status(self, a: int, status: Any) -> None:
        self._do(change_order_status, self._pick(self.orders, a), ChangeOrderStatus(status=status))

    def _confirm(self, a: int, b: int, n: int) -> None:
        self._status(a, "confirmed")

    def _deliver(self, a: int, b: int, n: int) -> None:
        with contextlib.suppress(DomainError):
            self._ship_all(a, b, n)
        self._status(a, "delivered")

    def _cancel(self, a: int, b: int, n: int) -> None:
        self._status(a, "cancelled")

    def _ship_all(self, a: int, b: int, n: int) -> None:
        order = self._pick(self.orders, a)
        with contextlib.suppress(DomainError):
            self._status(a, "confirmed")
        self._do(ship_order, order, ShipOrder(carrier="DHL", tracking_number=str(n)))

    def _ship_some(self, a: int, b: int, n: int) -> None:
        order = self._pick(self.orders, a)
        with contextlib.suppress(DomainError):
            self._status(a, "confirmed")
        outstanding = list(self._load(order).outstanding())
        if outstanding:
            items = [OrderItem(product_id=outstanding[b % len(outstanding)], quantity=1)]
            command = ShipOrder(carrier="UPS", tracking_number=str(n), items=items)
            self._do(ship_order, order, command)

    def _load(self, order_id: UUID) -> Order:
        return UnitOfWork(self.store.app).get(Order, order_id)

    def _pay(self, a: int, b: int, n: int) -> None:
        order = self._pick(self.orders, a)
        self._do(checkout, order, Checkout(method="card"), None)
        payment = self._do(confirm_checkout, order, None)
        self._do(capture_payment, payment.id, CapturePayment(), None)
        self.payments.append(payment.id)

    def _refund(self, a: int, b: int, n: int) -> None:
        command = RefundPayment(amount=Money(10 * n, "EUR"), reason="goodwill")
        self._do(refund_payment, self._pick(self.payments, a), command, None)

    def _return(self, a: int, b: int, n: int) -> None:
        shipped = [o for o in self.orders if self._load(o).shipped]
        order = self._load(self._pick(shipped, a))
        product = sorted(order.shipped)[b % len(order.shipped)]
        line = ReturnLine(
            product_id=product,
            quantity=1,
            reason="too small",
            condition="damaged" if n % 2 else "sellable",
        )
        command = RequestReturn(
            order_id=order.id,
            items=[line],
            resolution="refund",
            location_id=self._pick(self.locations, b),
        )
        rma = self._do(request_return, command)
        self._do(approve_return, rma.id)
        self._do(receive_return, rma.id, ReceiveReturn())
        if n % 3:
            self._do(refund_return, rma.id, None)


class _Nothing(DomainError):
    """Nothing of the kind exists yet to act on."""
