"""A shop's history in bulk: stock received, then orders placed, confirmed and shipped.

Every projection of the main group has work: products, stock levels, the ledger, low-stock
alerts and product costs (receipts at a unit cost, reservations, issues), orders, their
timeline, customers and sales (each order has three lines). The aggregates are built and
saved directly, many to a save, as `append_backlog` does: the point is a large history fast,
not the command path (measured by the HTTP benchmark).
"""

from __future__ import annotations

import time
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from application.context import CommandContext
from application.orders import document_of
from application.store import EventStore
from domain.catalogue import Product
from domain.customers import Customer
from domain.inventory import StockItem
from domain.locations import Location
from domain.orders import Order, OrderLine
from domain.values import Money

PRODUCTS = 200
CUSTOMERS = 500
LINES = 3
EVENTS_PER_ORDER = 1 + LINES + 1 + 1 + LINES  # placed, reserved ×3, confirmed, shipped, issued ×3
ORDERS_PER_SAVE = 20
PRICE, COST = Money(2500, "EUR"), Money(1000, "EUR")


def append_shop_backlog(store: EventStore, events: int) -> float:
    """Append about `events` events of a shop's history; events/s of the bulk append."""
    context = CommandContext.system("bench")
    started = time.perf_counter()
    location = Location.create(code="SHOP", name="Shop", kind="warehouse")
    products = [
        Product.create(sku=f"SHOP-{n}", name=f"Thing {n}", price=PRICE, cost=COST, reorder_level=10)
        for n in range(PRODUCTS)
    ]
    orders = max(1, events // EVENTS_PER_ORDER)
    stock = orders * LINES // PRODUCTS * 3 + 100  # each line takes at most 3 units
    items: dict[UUID, StockItem] = {}
    for product in products:
        item = StockItem.open(product.id, location.id)
        cost = Money(900 + len(items) % 7 * 50, "EUR")
        item.receive(stock, cost, reason="bench", document=None)
        items[product.id] = item
    customers = [
        Customer.register(email=f"c{n}@shop.example", name=f"Customer {n}")
        for n in range(CUSTOMERS)
    ]
    store.app.save(location, *products, *items.values(), *customers, metadata=context.metadata())
    written = 1 + 3 * PRODUCTS + CUSTOMERS
    for first in range(0, orders, ORDERS_PER_SAVE):
        batch: dict[UUID, Aggregate] = {}
        for number in range(first, min(first + ORDERS_PER_SAVE, orders)):
            order = _order(number, location.id, products, items, customers)
            batch[order.id] = order
            for line in order.lines:
                batch[line.product_id] = items[line.product_id]
        store.app.save(*batch.values(), metadata=context.metadata())
        written += (min(first + ORDERS_PER_SAVE, orders) - first) * EVENTS_PER_ORDER
    return written / (time.perf_counter() - started)


def _order(
    number: int,
    location_id: UUID,
    products: list[Product],
    items: dict[UUID, StockItem],
    customers: list[Customer],
) -> Order:
    """An order of three lines, reserved, confirmed and shipped whole."""
    order_id = uuid4()
    document = document_of(order_id)
    lines = []
    for line in range(LINES):
        product = products[(number * 7 + line * 61) % PRODUCTS]
        quantity = 1 + (number + line) % 3
        items[product.id].reserve(quantity, document=document)
        lines.append(OrderLine(product.id, product.sku, product.name, quantity, PRICE))
    order = Order.place(
        order_id=order_id,
        order_number=f"ORD-{number:07d}",
        customer_id=customers[number % CUSTOMERS].id,
        location_id=location_id,
        currency="EUR",
        lines=lines,
        shipping_address="1 Main St",
        tax_rate_basis_points=0,
    )
    order.confirm()
    for shipped in order.ship(None, carrier="DHL", tracking_number=str(number)):
        items[shipped.product_id].issue(shipped.quantity, document=document)
    return order
