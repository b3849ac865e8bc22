"""Read model of each order's history as human-readable entries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor
from psycopg.types.json import Jsonb

from domain.orders import Order, OrderLine
from domain.values import CURRENCY_EXPONENTS, Money
from projections.base import Change, RunApplier, Stamped
from projections.orders import order_totals
from projections.unnest import columns

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


_LINES = ("placed", "lines_changed")
_json = msgspec.json.Encoder().encode


@dataclass
class _Context:
    """What describing an order's events reads of its earlier entries: the data of its latest
    "placed" entry, and of its latest "placed" or "lines_changed" entry."""

    placed: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    lines: dict[UUID, dict[str, Any]] = field(default_factory=dict)

    def add(self, order_id: UUID, kind: str, data: dict[str, Any]) -> None:
        """One more entry of the order."""
        if kind == "placed":
            self.placed[order_id] = data
        if kind in _LINES:
            self.lines[order_id] = data


async def _latest(
    cursor: AsyncCursor[Any], order_ids: set[UUID], kinds: Sequence[str]
) -> dict[UUID, dict[str, Any]]:
    """Data of each order's latest entry of one of `kinds` (orders without one left out)."""
    if not order_ids:
        return {}
    await cursor.execute(
        "SELECT DISTINCT ON (order_id) order_id, data FROM order_timeline"
        " WHERE order_id = ANY(%b::uuid[]) AND kind = ANY(%b::text[])"
        " ORDER BY order_id, position DESC",
        (list(order_ids), list(kinds)),
    )
    return {order_id: dict(data) for order_id, data in await cursor.fetchall()}


async def _context(cursor: AsyncCursor[Any], events: Sequence[Stamped]) -> _Context:
    """The entries before the run that its events read: the latest "placed" entry of orders
    whose lines change before the run places them, the latest lines of orders that ship before
    the run places them or changes their lines."""
    placed: set[UUID] = set()
    lines: set[UUID] = set()
    seen_placed: set[UUID] = set()
    seen_lines: set[UUID] = set()
    for event, _ in events:
        order_id = event.originator_id
        if isinstance(event, Order.LinesChanged) and order_id not in seen_placed:
            placed.add(order_id)
        if isinstance(event, Order.ShipmentDispatched) and order_id not in seen_lines:
            lines.add(order_id)
        if isinstance(event, Order.Placed):
            seen_placed.add(order_id)
        if isinstance(event, Order.Placed | Order.LinesChanged):
            seen_lines.add(order_id)
    return _Context(
        await _latest(cursor, placed, ("placed",)), await _latest(cursor, lines, _LINES)
    )


def _shipment(
    event: Order.ShipmentDispatched, lines: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """A shipment's entry, naming products by the SKUs of the order's current `lines`."""
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


def _describe(
    event: DomainEventProtocol[Any], context: _Context
) -> tuple[str, str, dict[str, Any]]:
    """Kind, sentence and data of one order event, after the entries `context` holds."""
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
        placed = context.placed.get(event.originator_id, {})
        currency = placed.get("currency") or next(
            (line.unit_price.currency for line in event.lines), "EUR"
        )
        rate = int(placed.get("taxRateBasisPoints", 0))
        summary, data = _lines_entry(event.lines, currency, rate)
        return "lines_changed", f"Lines changed: {summary}", data
    if isinstance(event, Order.ShipmentDispatched):
        return _shipment(event, context.lines.get(event.originator_id, {}))
    if isinstance(event, Order.Cancelled):
        return "cancelled", f"Cancelled: {event.reason}", {"reason": event.reason}
    if isinstance(event, Order.PaymentStatusChanged):
        status = event.payment_status
        text = f"Payment status changed to {status.replace('_', ' ')}"
        return "payment_status_changed", text, {"paymentStatus": status}
    kind, text = _SIMPLE[type(event)]
    return kind, text, {}


class OrderTimelineProjection(RunApplier):
    """One row per order event, in store order, with who did it and a sentence saying what."""

    name = "order_timeline"
    ddl = DDL
    tables: tuple[str, ...] = ("order_timeline",)
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Order events."""
        return isinstance(event, _HANDLED)

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Append each event's entry to its order's timeline: describe the events in order,
        each after the entries of the events before it, and insert the entries at once."""
        if not events:
            return []
        context = await _context(cursor, events)
        rows: list[tuple[Any, ...]] = []
        for event, info in events:
            kind, text, data = _describe(event, context)
            context.add(event.originator_id, kind, data)
            row = (event.originator_id, info.position, info.timestamp, info.actor, kind, text)
            rows.append((*row, Jsonb(data, dumps=_json)))
        await cursor.execute(
            "INSERT INTO order_timeline (order_id, position, at, actor, kind, text, data)"
            " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::timestamptz[], %b::text[],"
            " %b::text[], %b::text[], %b::jsonb[])",
            columns(rows),
        )
        return []
