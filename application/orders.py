"""Commands on sales orders: place, edit, move through the lifecycle, ship, cancel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from uuid import UUID, uuid4

import msgspec

from application.company import company_settings
from application.context import CommandContext
from application.inventory import stock_item_for
from application.store import EventStore, Outcome, UnitOfWork
from domain.catalogue import Product
from domain.company import COMPANY_SETTINGS_ID
from domain.customers import Customer
from domain.errors import IllegalTransition, InsufficientStock, InvalidValue, Shortage
from domain.inventory import StockItem
from domain.orders import Order, OrderLine, merge_lines

ORDER_NUMBER_SEQUENCE = "order_numbers"


class OrderItem(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A product and how many."""

    product_id: UUID
    quantity: int


class PlaceOrder(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A new order; prices come from the catalogue, never from the client."""

    customer_id: UUID
    items: list[OrderItem]
    shipping_address: str
    location_id: UUID | None = None
    currency: str | None = None


class ChangeOrderLines(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """New lines for a pending order."""

    items: list[OrderItem]


class ChangeOrderStatus(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Move an order along its lifecycle."""

    status: Literal["confirmed", "processing", "shipped", "delivered", "cancelled"]
    note: str | None = None


class ShipOrder(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A shipment: everything outstanding when `items` is absent."""

    carrier: str
    tracking_number: str
    items: list[OrderItem] | None = None


def document_of(order_id: UUID) -> str:
    """How stock movements name the order that caused them."""
    return f"order:{order_id}"


def _priced_and_reserved_lines(
    unit: UnitOfWork,
    order_id: UUID,
    location_id: UUID,
    currency: str,
    items: list[OrderItem],
) -> list[OrderLine]:
    """Price merged lines from the catalogue and reserve their stock, all or nothing."""
    merged = merge_lines([(item.product_id, item.quantity) for item in items])
    unit.prefetch([location_id, *merged, *_stock_ids(location_id, merged)])
    lines: list[OrderLine] = []
    shortages: list[Shortage] = []
    for product_id, quantity in merged.items():
        product = unit.get(Product, product_id)
        if product.status == "archived":
            raise IllegalTransition(f"product {product.sku} is archived and cannot be ordered")
        if product.price.currency != currency:
            raise InvalidValue("currency", f"{product.sku} is priced in {product.price.currency}")
        item = stock_item_for(unit, product_id, location_id)
        try:
            backordered = item.reserve(
                quantity, document=document_of(order_id), allow_backorder=product.allow_backorder
            )
        except InsufficientStock as short:
            shortages.extend(short.shortages)
            continue
        lines.append(
            OrderLine(
                product_id=product_id,
                sku=product.sku,
                name=product.name,
                quantity=quantity,
                unit_price=product.price,
                backordered=backordered,
            )
        )
    if shortages:
        raise InsufficientStock("not enough stock for some lines", shortages)
    return lines


def next_order_number(store: EventStore) -> int:
    """The number of the next order (taken outside the save: a sequence never rolls back)."""
    return store.next_number(ORDER_NUMBER_SEQUENCE)


def placed_order(unit: UnitOfWork, command: PlaceOrder, number: int) -> Order:
    """A new order in `unit`: its lines priced and their stock reserved (saved with the unit)."""
    # Two queries for everything the order reads: what the command names, then the location
    # and stock items once the settings have said which location.
    unit.prefetch(
        [command.customer_id, COMPANY_SETTINGS_ID, *(i.product_id for i in command.items)]
    )
    customer = unit.get(Customer, command.customer_id)
    customer.check_can_order()
    settings = company_settings(unit)
    location_id = command.location_id or settings.default_location_id
    if location_id is None:
        raise InvalidValue("locationId", "required: no default location is set")
    currency = command.currency or settings.default_currency
    order_id = uuid4()
    lines = _priced_and_reserved_lines(unit, order_id, location_id, currency, command.items)
    order = Order.place(
        order_id=order_id,
        order_number=f"ORD-{number:06d}",
        customer_id=customer.id,
        location_id=location_id,
        currency=currency,
        lines=lines,
        shipping_address=command.shipping_address,
        tax_rate_basis_points=settings.tax_rate_basis_points,
    )
    unit.add(order)
    return order


def place_order(store: EventStore, context: CommandContext, command: PlaceOrder) -> Outcome[Order]:
    """Price the lines, reserve their stock and create the order in one atomic save."""
    number = next_order_number(store)
    return store.execute(context, lambda unit: placed_order(unit, command, number))


def _stock_ids(location_id: UUID, product_ids: Iterable[UUID]) -> list[UUID]:
    return [StockItem.create_id(product_id, location_id) for product_id in product_ids]


def _release_all(unit: UnitOfWork, order: Order, reason: str) -> None:
    unit.prefetch(_stock_ids(order.location_id, (line.product_id for line in order.lines)))
    for line in order.lines:
        item = unit.get(StockItem, StockItem.create_id(line.product_id, order.location_id))
        item.release(document=document_of(order.id), reason=reason)


def change_order_lines(
    store: EventStore,
    context: CommandContext,
    order_id: UUID,
    command: ChangeOrderLines,
    *,
    if_match: int | None = None,
) -> Outcome[Order]:
    """Replace a pending order's lines: release the old reservations, reserve the new."""

    def decide(unit: UnitOfWork) -> Order:
        order = unit.get(Order, order_id, version=if_match)
        if order.status != "pending":
            raise IllegalTransition(f"cannot change lines of an order that is {order.status}")
        _release_all(unit, order, "order edited")
        lines = _priced_and_reserved_lines(
            unit, order.id, order.location_id, order.currency, command.items
        )
        order.change_lines(lines)
        return order

    return store.execute(context, decide)


def ship_order(
    store: EventStore,
    context: CommandContext,
    order_id: UUID,
    command: ShipOrder,
    *,
    if_match: int | None = None,
) -> Outcome[Order]:
    """Record a shipment and issue its stock against the order's reservations."""

    def decide(unit: UnitOfWork) -> Order:
        order = unit.get(Order, order_id, version=if_match)
        items = None
        if command.items is not None:
            items = merge_lines([(i.product_id, i.quantity) for i in command.items])
        shipment = order.ship(
            items, carrier=command.carrier, tracking_number=command.tracking_number
        )
        unit.prefetch(_stock_ids(order.location_id, (item.product_id for item in shipment)))
        for shipped in shipment:
            stock = unit.get(StockItem, StockItem.create_id(shipped.product_id, order.location_id))
            stock.allocate_backorder(document=document_of(order.id))
            stock.issue(shipped.quantity, document=document_of(order.id))
        return order

    return store.execute(context, decide)


def change_order_status(
    store: EventStore,
    context: CommandContext,
    order_id: UUID,
    command: ChangeOrderStatus,
    *,
    if_match: int | None = None,
) -> Outcome[Order]:
    """Confirm, start processing, ship everything, mark delivered, or cancel."""
    if command.status == "shipped":
        return ship_order(
            store,
            context,
            order_id,
            ShipOrder(carrier="", tracking_number=""),
            if_match=if_match,
        )

    def decide(unit: UnitOfWork) -> Order:
        order = unit.get(Order, order_id, version=if_match)
        if command.status == "confirmed":
            order.confirm()
        elif command.status == "processing":
            order.start_processing()
        elif command.status == "delivered":
            order.deliver()
        else:
            order.cancel(command.note or "cancelled")
            _release_all(unit, order, "order cancelled")
        return order

    return store.execute(context, decide)
