"""Queries on the returns read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row


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
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    if order_id is not None:
        clauses.append("order_id = %s")
        params.append(order_id)
    if status is not None:
        clauses.append("status = %s")
        params.append(status)
    params.append(limit)
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT * FROM read.returns WHERE {' AND '.join(clauses)}"
            " ORDER BY created_at DESC, id LIMIT %s",
            params,
        )
        return [_view(row) for row in await cursor.fetchall()]
