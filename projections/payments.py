"""Read model of payments (one row per payment, refunds as a JSON list)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor
from psycopg.types.json import Jsonb

from domain.payments import Payment
from projections.base import Change, RunApplier, Stamped
from projections.unnest import columns, unnest_of

DDL = """
CREATE TABLE IF NOT EXISTS payments (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    method text NOT NULL,
    provider text NOT NULL,
    status text NOT NULL,
    provider_reference text,
    authorized bigint NOT NULL DEFAULT 0,
    captured bigint NOT NULL DEFAULT 0,
    refunded bigint NOT NULL DEFAULT 0,
    refunds jsonb NOT NULL DEFAULT '[]',
    failure_reason text,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_order ON payments (order_id);
CREATE TABLE IF NOT EXISTS payment_movements (
    position bigint PRIMARY KEY,
    payment_id uuid NOT NULL,
    provider text NOT NULL,
    kind text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_movements_at ON payment_movements (at);
"""

_COLUMNS = (
    ("id", "uuid"),
    ("order_id", "uuid"),
    ("amount", "bigint"),
    ("currency", "text"),
    ("method", "text"),
    ("provider", "text"),
    ("status", "text"),
    ("provider_reference", "text"),
    ("authorized", "bigint"),
    ("captured", "bigint"),
    ("refunded", "bigint"),
    ("refunds", "jsonb"),
    ("failure_reason", "text"),
    ("version", "integer"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_NAMES = tuple(name for name, _ in _COLUMNS)
_CHANGING = (
    "status",
    "provider_reference",
    "authorized",
    "captured",
    "refunded",
    "refunds",
    "failure_reason",
    "version",
    "updated_at",
)
_TYPES = dict(_COLUMNS)
_INSERT = f"INSERT INTO payments ({', '.join(_NAMES)}) SELECT * FROM {unnest_of(_NAMES, _TYPES)}"
_UPDATE = (
    f"UPDATE payments p SET {', '.join(f'{name} = d.{name}' for name in _CHANGING)}"
    f" FROM {unnest_of(['id', *_CHANGING], _TYPES)} WHERE p.id = d.id"
)
_MOVEMENTS = (
    "INSERT INTO payment_movements (position, payment_id, provider, kind, amount, currency, at)"
    " SELECT * FROM unnest(%b::bigint[], %b::uuid[], %b::text[], %b::text[], %b::bigint[],"
    " %b::text[], %b::timestamptz[])"
)
_json = msgspec.json.Encoder().encode

_STATUS: dict[type[Any], str] = {
    Payment.ActionRequired: "requires_action",
    Payment.Authorized: "authorized",
    Payment.Captured: "captured",
    Payment.Voided: "voided",
    Payment.Failed: "failed",
}
_HANDLED: tuple[type[Any], ...] = (
    Payment.Created,
    Payment.ProviderLinked,
    Payment.Refunded,
    *_STATUS,
)


def _created(event: Payment.Created, at: datetime) -> dict[str, Any]:
    return {
        "id": event.originator_id,
        "order_id": event.order_id,
        "amount": event.amount.amount,
        "currency": event.amount.currency,
        "method": event.method,
        "provider": event.provider,
        "status": "pending",
        "provider_reference": None,
        "authorized": 0,
        "captured": 0,
        "refunded": 0,
        "refunds": [],
        "failure_reason": None,
        "version": event.originator_version,
        "created_at": at,
        "updated_at": at,
    }


def _fold(row: dict[str, Any], event: DomainEventProtocol[Any]) -> tuple[str, int] | None:
    """Apply a change of the payment to its row; the money movement it makes, if any."""
    movement = None
    if isinstance(event, Payment.ProviderLinked):
        row["provider_reference"] = event.reference
    elif isinstance(event, Payment.Authorized):
        row["authorized"] = event.amount.amount
    elif isinstance(event, Payment.Captured):
        row["captured"] += event.amount.amount
        movement = ("captured", event.amount.amount)
    elif isinstance(event, Payment.Failed):
        row["failure_reason"] = event.reason
    elif isinstance(event, Payment.Refunded):
        amount = event.refund.amount.amount
        refund = {
            "refundId": event.refund.refund_id,
            "amount": amount,
            "reason": event.refund.reason,
        }
        row["refunds"] = [*row["refunds"], refund]
        full = row["refunded"] + amount >= row["captured"]
        row["status"] = "refunded" if full else "partially_refunded"
        row["refunded"] += amount
        movement = ("refunded", amount)
    row["status"] = _STATUS.get(type(event), row["status"])
    row["version"] = event.originator_version
    return movement


class PaymentsProjection(RunApplier):
    """Payments per order, and money movements for reconciliation."""

    name = "payments"
    ddl = DDL
    tables: tuple[str, ...] = ("payments", "payment_movements")
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Payment events that change what clients see."""
        return isinstance(event, _HANDLED)

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Fold the run's events into the rows of their payments (read once, those the run
        did not create), then insert the new rows, update the stored ones and record the
        captures and refunds as movements, one statement each. Events of a payment that
        does not exist change nothing."""
        created = {e.originator_id for e, _ in events if isinstance(e, Payment.Created)}
        stored = await _load(cursor, {e.originator_id for e, _ in events} - created)
        new: dict[UUID, dict[str, Any]] = {}
        movements: list[tuple[Any, ...]] = []
        for event, info in events:
            if isinstance(event, Payment.Created):
                new[event.originator_id] = _created(event, info.timestamp)
                continue
            row = new.get(event.originator_id) or stored.get(event.originator_id)
            if row is None:
                continue
            movement = _fold(row, event)
            row["updated_at"] = info.timestamp
            if movement is not None:
                kind, amount = movement
                at = info.timestamp
                provider, currency = row["provider"], row["currency"]
                movements.append((info.position, row["id"], provider, kind, amount, currency, at))
        if new:
            await cursor.execute(_INSERT, columns(_values(row, _NAMES) for row in new.values()))
        if stored:
            names = ("id", *_CHANGING)
            await cursor.execute(_UPDATE, columns(_values(row, names) for row in stored.values()))
        if movements:
            await cursor.execute(_MOVEMENTS, columns(movements))
        return []


def _values(row: dict[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    return tuple(Jsonb(row[n], dumps=_json) if n == "refunds" else row[n] for n in names)


async def _load(cursor: AsyncCursor[Any], payment_ids: set[UUID]) -> dict[UUID, dict[str, Any]]:
    """The stored rows of these payments (those that exist)."""
    if not payment_ids:
        return {}
    await cursor.execute(
        f"SELECT {', '.join(_NAMES)} FROM payments WHERE id = ANY(%b::uuid[])", (list(payment_ids),)
    )
    return {row[0]: dict(zip(_NAMES, row, strict=True)) for row in await cursor.fetchall()}
