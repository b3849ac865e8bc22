"""Commands that move stock."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

import msgspec

from application.context import CommandContext
from application.store import EventStore, Outcome, UnitOfWork
from domain.catalogue import Product
from domain.errors import IllegalTransition, InvalidValue
from domain.inventory import StockItem
from domain.locations import Location
from domain.values import Money


class ReceiveStock(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Goods arrived at a location."""

    product_id: UUID
    location_id: UUID
    quantity: int
    unit_cost: Money | None = None
    document: str | None = None


class AdjustStock(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Correct the on-hand count by a signed quantity, with a reason."""

    product_id: UUID
    location_id: UUID
    quantity: int
    reason: str
    document: str | None = None


def stock_item_for(unit: UnitOfWork, product_id: UUID, location_id: UUID) -> StockItem:
    """The stock item of a product at a location, opened on first use."""
    item_id = StockItem.create_id(product_id, location_id)
    unit.prefetch([product_id, location_id, item_id])
    product = unit.get(Product, product_id)
    location = unit.get(Location, location_id)
    item = unit.find(StockItem, item_id)
    if item is None:
        if not location.active:
            raise IllegalTransition("the location is deactivated")
        item = StockItem.open(product.id, location.id)
        unit.add(item)
    return item


def receive_stock(
    store: EventStore, context: CommandContext, command: ReceiveStock
) -> Outcome[StockItem]:
    """Book goods in at a unit cost (the product's cost when none is given)."""

    def decide(unit: UnitOfWork) -> StockItem:
        item = stock_item_for(unit, command.product_id, command.location_id)
        product = unit.get(Product, command.product_id)
        unit_cost = command.unit_cost or product.cost
        if unit_cost.currency != product.cost.currency:
            raise InvalidValue("unitCost", f"must be in {product.cost.currency}")
        item.receive(command.quantity, unit_cost, document=command.document)
        return item

    return store.execute(context, decide)


def adjust_stock(
    store: EventStore, context: CommandContext, command: AdjustStock
) -> Outcome[StockItem]:
    """Add or remove units outside of orders and receipts (damage, found, correction)."""

    def decide(unit: UnitOfWork) -> StockItem:
        item = stock_item_for(unit, command.product_id, command.location_id)
        item.adjust(command.quantity, reason=command.reason, document=command.document)
        return item

    return store.execute(context, decide)


class TransferStock(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Move units between two locations."""

    product_id: UUID
    from_location_id: UUID
    to_location_id: UUID
    quantity: int


class CountLine(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """What was physically counted of one product."""

    product_id: UUID
    counted: int


class CountStock(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """A physical count at one location."""

    location_id: UUID
    lines: list[CountLine]


@dataclass(frozen=True)
class Transfer:
    """Both sides of a transfer, saved together."""

    document: str
    source: StockItem
    destination: StockItem


def transfer_stock(
    store: EventStore, context: CommandContext, command: TransferStock
) -> Outcome[Transfer]:
    """Take units out of one location and into another in one atomic save."""
    document = f"transfer:{uuid4()}"

    def decide(unit: UnitOfWork) -> Transfer:
        if command.from_location_id == command.to_location_id:
            raise InvalidValue("toLocationId", "must differ from fromLocationId")
        source = stock_item_for(unit, command.product_id, command.from_location_id)
        destination = stock_item_for(unit, command.product_id, command.to_location_id)
        source.transfer_out(
            command.quantity, to_location_id=command.to_location_id, document=document
        )
        destination.transfer_in(
            command.quantity, from_location_id=command.from_location_id, document=document
        )
        return Transfer(document=document, source=source, destination=destination)

    return store.execute(context, decide)


def count_stock(
    store: EventStore, context: CommandContext, command: CountStock
) -> Outcome[list[StockItem]]:
    """Reconcile on hand to a physical count, line by line, all lines or none."""
    document = f"count:{uuid4()}"

    def decide(unit: UnitOfWork) -> list[StockItem]:
        if not command.lines:
            raise InvalidValue("lines", "a count needs at least one line")
        seen: set[UUID] = set()
        items = []
        for line in command.lines:
            if line.product_id in seen:
                raise InvalidValue("lines", f"product {line.product_id} is counted twice")
            seen.add(line.product_id)
            item = stock_item_for(unit, line.product_id, command.location_id)
            item.count(line.counted, document=document)
            items.append(item)
        return items

    return store.execute(context, decide)
