"""Queries on the payments read model."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection

from domain.values import Money
from projections.paging import newest_rows


class RefundView(msgspec.Struct, rename="camel", frozen=True):
    """One refund."""

    refund_id: str
    amount: Money
    reason: str


class PaymentView(msgspec.Struct, rename="camel", frozen=True):
    """A payment as clients see it."""

    id: UUID
    order_id: UUID
    amount: Money
    method: str
    provider: str
    status: str
    provider_reference: str | None
    authorized: Money
    captured: Money
    refunded: Money
    refunds: list[RefundView]
    failure_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    client_secret: str | None = None


def _view(row: dict[str, Any]) -> PaymentView:
    currency = row["currency"]
    return PaymentView(
        id=row["id"],
        order_id=row["order_id"],
        amount=Money(row["amount"], currency),
        method=row["method"],
        provider=row["provider"],
        status=row["status"],
        provider_reference=row["provider_reference"],
        authorized=Money(row["authorized"], currency),
        captured=Money(row["captured"], currency),
        refunded=Money(row["refunded"], currency),
        refunds=[
            RefundView(
                refund_id=r["refundId"], amount=Money(r["amount"], currency), reason=r["reason"]
            )
            for r in row["refunds"]
        ],
        failure_reason=row["failure_reason"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def list_payments(
    connection: AsyncConnection[Any], *, order_id: UUID | None, status: str | None, limit: int
) -> list[PaymentView]:
    """Payments, newest first, filtered by order and status."""
    rows = await newest_rows(
        connection, "payments", {"order_id": order_id, "status": status}, limit
    )
    return [_view(row) for row in rows]


class ReconciliationRow(msgspec.Struct, rename="camel", frozen=True):
    """Money moved on one day through one provider."""

    day: date
    provider: str
    currency: str
    captured: int
    refunded: int
    net: int


async def reconciliation(
    connection: AsyncConnection[Any], *, start: date, end: date, timezone: str
) -> list[ReconciliationRow]:
    """Captured, refunded and net per day (in `timezone`) and provider, over [start, end]."""
    cursor = await connection.execute(
        "SELECT (at AT TIME ZONE %s)::date AS day, provider, currency,"
        " sum(amount) FILTER (WHERE kind = 'captured') AS captured,"
        " sum(amount) FILTER (WHERE kind = 'refunded') AS refunded"
        " FROM payment_movements"
        " WHERE (at AT TIME ZONE %s)::date BETWEEN %s AND %s"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        (timezone, timezone, start, end),
    )
    return [
        ReconciliationRow(
            day=day,
            provider=provider,
            currency=currency,
            captured=int(captured or 0),
            refunded=int(refunded or 0),
            net=int(captured or 0) - int(refunded or 0),
        )
        for day, provider, currency, captured, refunded in await cursor.fetchall()
    ]
