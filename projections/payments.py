"""Read model of payments (one row per payment, refunds as a JSON list)."""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.payments import Payment
from projections.base import Change, EventInfo

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

_SETS: dict[type[Any], str] = {
    Payment.ProviderLinked: "provider_reference = %(reference)s",
    Payment.ActionRequired: "status = 'requires_action'",
    Payment.Authorized: "authorized = %(amount_value)s, status = 'authorized'",
    Payment.Captured: "captured = captured + %(amount_value)s, status = 'captured'",
    Payment.Voided: "status = 'voided'",
    Payment.Failed: "status = 'failed', failure_reason = %(reason)s",
    Payment.Refunded: "refunded = refunded + %(amount_value)s,"
    " refunds = refunds || %(refund_json)s::jsonb,"
    " status = CASE WHEN refunded + %(amount_value)s >= captured THEN 'refunded'"
    " ELSE 'partially_refunded' END",
}


class PaymentsProjection:
    """Payments per order, and money movements for reconciliation."""

    name = "payments"
    ddl = DDL
    tables: tuple[str, ...] = ("payments", "payment_movements")
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Payment events that change what clients see."""
        return isinstance(event, Payment.Created) or type(event) in _SETS

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Insert or update the payment's row; record captures and refunds as movements."""
        params: dict[str, Any] = {
            **vars(event),
            "version": event.originator_version,
            "at": info.timestamp,
        }
        if isinstance(event, Payment.Created):
            await cursor.execute(
                "INSERT INTO payments (id, order_id, amount, currency, method, provider,"
                " status, version, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s,"
                " 'pending', %s, %s, %s)",
                (
                    event.originator_id,
                    event.order_id,
                    event.amount.amount,
                    event.amount.currency,
                    event.method,
                    event.provider,
                    event.originator_version,
                    info.timestamp,
                    info.timestamp,
                ),
            )
            return []
        if isinstance(event, Payment.Refunded):
            params["amount_value"] = event.refund.amount.amount
            params["refund_json"] = json.dumps(
                [
                    {
                        "refundId": event.refund.refund_id,
                        "amount": event.refund.amount.amount,
                        "reason": event.refund.reason,
                    }
                ]
            )
        elif "amount" in params:
            params["amount_value"] = params["amount"].amount
        await cursor.execute(
            f"UPDATE payments SET {_SETS[type(event)]}, version = %(version)s,"
            " updated_at = %(at)s WHERE id = %(originator_id)s"
            " RETURNING provider, currency",
            params,
        )
        row = await cursor.fetchone()
        if row is not None and isinstance(event, Payment.Captured | Payment.Refunded):
            kind = "captured" if isinstance(event, Payment.Captured) else "refunded"
            await cursor.execute(
                "INSERT INTO payment_movements (position, payment_id, provider, kind,"
                " amount, currency, at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    info.position,
                    event.originator_id,
                    row[0],
                    kind,
                    params["amount_value"],
                    row[1],
                    info.timestamp,
                ),
            )
        return []
