"""Queries on the returns read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection

from projections.paging import newest_rows


class ReturnItemView(msgspec.Struct, rename="camel", frozen=True):
    """One product of a return."""

    product_id: UUID
    quantity: int
    reason: str
    condition: str
    received: int = 0


class ReturnView(msgspec.Struct, rename="camel", frozen=True):
    """A return as clients see it."""

    id: UUID
    order_id: UUID
    status: str
    resolution: str
    location_id: UUID
    items: list[ReturnItemView]
    refunded_amount: int
    replacement_order_id: UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


def _view(row: dict[str, Any]) -> ReturnView:
    received = row["received"]
    return ReturnView(
        id=row["id"],
        order_id=row["order_id"],
        status=row["status"],
        resolution=row["resolution"],
        location_id=row["location_id"],
        items=[
            ReturnItemView(
                product_id=UUID(i["productId"]),
                quantity=i["quantity"],
                reason=i["reason"],
                condition=i["condition"],
                received=received.get(i["productId"], 0),
            )
            for i in row["items"]
        ],
        refunded_amount=row["refunded_amount"],
        replacement_order_id=row["replacement_order_id"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def list_returns(
    connection: AsyncConnection[Any], *, order_id: UUID | None, status: str | None, limit: int
) -> list[ReturnView]:
    """Returns, newest first."""
    rows = await newest_rows(connection, "returns", {"order_id": order_id, "status": status}, limit)
    return [_view(row) for row in rows]


class ReturnRate(msgspec.Struct, rename="camel", frozen=True):
    """How often a product comes back, and why."""

    product_id: UUID
    sku: str
    shipped: int
    returned: int
    rate: float
    reasons: dict[str, int]


async def returns_report(connection: AsyncConnection[Any]) -> list[ReturnRate]:
    """Per product: units shipped, units under returns (not rejected/cancelled), reasons."""
    cursor = await connection.execute(
        "WITH returned AS ("
        " SELECT (i->>'productId')::uuid AS product_id, i->>'reason' AS reason,"
        " sum((i->>'quantity')::int) AS quantity"
        " FROM returns r, jsonb_array_elements(r.items) i"
        " WHERE r.status NOT IN ('rejected', 'cancelled') GROUP BY 1, 2),"
        " shipped AS (SELECT product_id, max(sku) AS sku, sum(shipped) AS shipped"
        " FROM order_lines GROUP BY product_id)"
        " SELECT s.product_id, s.sku, s.shipped, sum(r.quantity),"
        " jsonb_object_agg(r.reason, r.quantity)"
        " FROM returned r JOIN shipped s ON s.product_id = r.product_id"
        " GROUP BY s.product_id, s.sku, s.shipped ORDER BY sum(r.quantity) DESC, s.sku"
    )
    rows = await cursor.fetchall()
    report = []
    for product_id, sku, shipped, returned, reasons in rows:
        counts = {reason: int(quantity) for reason, quantity in reasons.items()}
        report.append(
            ReturnRate(
                product_id=product_id,
                sku=sku,
                shipped=int(shipped),
                returned=int(returned),
                rate=round(int(returned) / int(shipped), 4) if shipped else 0.0,
                reasons=counts,
            )
        )
    return report
