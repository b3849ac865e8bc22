"""Read model of each order's history as human-readable entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor
from psycopg.types.json import Jsonb

from domain.orders import Order, OrderLine
from domain.values import CURRENCY_EXPONENTS, Money
from projections.base import Change, EventInfo
from projections.orders import order_totals

DDL = """
CREATE TABLE IF NOT EXISTS order_timeline (
    order_id uuid NOT NULL,
    position bigint NOT NULL,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    kind text NOT NULL,
    text text NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (order_id, position)
);
"""

_SIMPLE: dict[type[Any], tuple[str, str]] = {
    Order.Confirmed: ("confirmed", "Confirmed"),
    Order.ProcessingStarted: ("processing_started", "Processing started"),
    Order.Delivered: ("delivered", "Delivered"),
}
_HANDLED: tuple[type[Any], ...] = (
    Order.Placed,
    Order.LinesChanged,
    Order.ShipmentDispatched,
    Order.Cancelled,
    Order.PaymentStatusChanged,
    *_SIMPLE,
)


def format_money(amount: int, currency: str) -> str:
    """Minor units as a decimal amount with its code: 5997 EUR → "59.97 EUR"."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent)
    fraction = f".{minor:0{exponent}d}" if exponent else ""
    return f"{sign}{units}{fraction} {currency}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _money(money: Money) -> dict[str, Any]:
    return {"amount": money.amount, "currency": money.currency}


def _lines_entry(
    lines: Sequence[OrderLine], currency: str, rate: int
) -> tuple[str, dict[str, Any]]:
    """Summary sentence and data of a set of lines."""
    subtotal, tax, total = order_totals(lines, currency, rate)
    units = sum(line.quantity for line in lines)
    summary = (
        f"{_count(len(lines), 'line')}, {_count(units, 'unit')},"
        f" total {format_money(total.amount, total.currency)}"
    )
    data = {
        "lines": [
            {
                "productId": str(line.product_id),
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unitPrice": _money(line.unit_price),
            }
            for line in lines
        ],
        "subtotal": _money(subtotal),
        "tax": _money(tax),
        "total": _money(total),
    }
    return summary, data


async def _entry_data(cursor: AsyncCursor[Any], order_id: UUID, *kinds: str) -> dict[str, Any]:
    """Data of the order's latest entry of one of `kinds` ({} if none)."""
    await cursor.execute(
        "SELECT data FROM order_timeline WHERE order_id = %s AND kind = ANY(%s)"
        " ORDER BY position DESC LIMIT 1",
        (order_id, list(kinds)),
    )
    row = await cursor.fetchone()
    return dict(row[0]) if row else {}


async def _shipment(
    cursor: AsyncCursor[Any], event: Order.ShipmentDispatched
) -> tuple[str, str, dict[str, Any]]:
    """A shipment's entry, naming products by the SKUs of the order's current lines."""
    lines = await _entry_data(cursor, event.originator_id, "placed", "lines_changed")
    skus = {line["productId"]: line["sku"] for line in lines.get("lines", [])}
    items = [
        {
            "productId": str(item.product_id),
            "sku": skus.get(str(item.product_id), ""),
            "quantity": item.quantity,
        }
        for item in event.items
    ]
    text = f"Shipment {event.shipment_number} dispatched"
    if event.carrier:
        text += f" via {event.carrier}"
    if event.tracking_number:
        text += f" (tracking {event.tracking_number})"
    text += ": " + ", ".join(
        f"{item['quantity']} × {item['sku'] or item['productId']}" for item in items
    )
    data = {
        "shipmentNumber": event.shipment_number,
        "carrier": event.carrier,
        "trackingNumber": event.tracking_number,
        "items": items,
    }
    return "shipment_dispatched", text, data


async def _describe(
    cursor: AsyncCursor[Any], event: DomainEventProtocol[Any]
) -> tuple[str, str, dict[str, Any]]:
    """Kind, sentence and data of one order event."""
    if isinstance(event, Order.Placed):
        summary, data = _lines_entry(event.lines, event.currency, event.tax_rate_basis_points)
        data |= {
            "orderNumber": event.order_number,
            "currency": event.currency,
            "taxRateBasisPoints": event.tax_rate_basis_points,
            "shippingAddress": event.shipping_address,
        }
        return "placed", f"Order {event.order_number} placed: {summary}", data
    if isinstance(event, Order.LinesChanged):
        placed = await _entry_data(cursor, event.originator_id, "placed")
        currency = placed.get("currency") or next(
            (line.unit_price.currency for line in event.lines), "EUR"
        )
        rate = int(placed.get("taxRateBasisPoints", 0))
        summary, data = _lines_entry(event.lines, currency, rate)
        return "lines_changed", f"Lines changed: {summary}", data
    if isinstance(event, Order.ShipmentDispatched):
        return await _shipment(cursor, event)
    if isinstance(event, Order.Cancelled):
        return "cancelled", f"Cancelled: {event.reason}", {"reason": event.reason}
    if isinstance(event, Order.PaymentStatusChanged):
        status = event.payment_status
        text = f"Payment status changed to {status.replace('_', ' ')}"
        return "payment_status_changed", text, {"paymentStatus": status}
    kind, text = _SIMPLE[type(event)]
    return kind, text, {}


class OrderTimelineProjection:
    """One row per order event, in store order, with who did it and a sentence saying what."""

    name = "order_timeline"
    ddl = DDL
    tables: tuple[str, ...] = ("order_timeline",)
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Order events."""
        return isinstance(event, _HANDLED)

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Append the event's entry to its order's timeline."""
        kind, text, data = await _describe(cursor, event)
        await cursor.execute(
            "INSERT INTO order_timeline (order_id, position, at, actor, kind, text, data)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                event.originator_id,
                info.position,
                info.timestamp,
                info.actor,
                kind,
                text,
                Jsonb(data),
            ),
        )
        return []
