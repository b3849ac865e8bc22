"""Read model of returns (RMAs)."""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.returns import Return
from projections.base import Change, EventInfo

DDL = """
CREATE TABLE IF NOT EXISTS returns (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    status text NOT NULL,
    resolution text NOT NULL,
    location_id uuid NOT NULL,
    items jsonb NOT NULL,
    received jsonb NOT NULL DEFAULT '{}',
    refunded_amount bigint NOT NULL DEFAULT 0,
    replacement_order_id uuid,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS returns_order ON returns (order_id);
"""

_STATUS: dict[type[Any], str] = {
    Return.Approved: "approved",
    Return.Rejected: "rejected",
    Return.Cancelled: "cancelled",
    Return.Closed: "closed",
}


class ReturnsProjection:
    """One row per return."""

    name = "returns"
    ddl = DDL
    tables: tuple[str, ...] = ("returns",)
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Return events."""
        return isinstance(event, Return.Event)

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Insert on request, update otherwise."""
        where = (event.originator_version, info.timestamp, event.originator_id)
        if isinstance(event, Return.Requested):
            items = [
                {
                    "productId": str(i.product_id),
                    "quantity": i.quantity,
                    "reason": i.reason,
                    "condition": i.condition,
                }
                for i in event.items
            ]
            await cursor.execute(
                "INSERT INTO returns (id, order_id, status, resolution, location_id, items,"
                " version, created_at, updated_at) VALUES (%s, %s, 'requested', %s, %s, %s, %s,"
                " %s, %s)",
                (
                    event.originator_id,
                    event.order_id,
                    event.resolution,
                    event.location_id,
                    json.dumps(items),
                    event.originator_version,
                    info.timestamp,
                    info.timestamp,
                ),
            )
        elif isinstance(event, Return.ItemsReceived):
            await cursor.execute(
                "SELECT items, received FROM returns WHERE id = %s", (event.originator_id,)
            )
            row = await cursor.fetchone()
            if row is None:
                return []
            items, received = row
            for item in event.items:
                key = str(item.product_id)
                received[key] = received.get(key, 0) + item.quantity
            complete = all(received.get(i["productId"], 0) >= i["quantity"] for i in items)
            await cursor.execute(
                "UPDATE returns SET received = %s, status = %s, version = %s,"
                " updated_at = %s WHERE id = %s",
                (json.dumps(received), "received" if complete else "partially_received", *where),
            )
        elif isinstance(event, Return.Refunded):
            await cursor.execute(
                "UPDATE returns SET refunded_amount = refunded_amount + %s,"
                " status = CASE WHEN status = 'partially_received' THEN status"
                " ELSE 'refunded' END, version = %s, updated_at = %s WHERE id = %s",
                (event.amount, *where),
            )
        elif isinstance(event, Return.Exchanged):
            await cursor.execute(
                "UPDATE returns SET replacement_order_id = %s, status = 'exchanged',"
                " version = %s, updated_at = %s WHERE id = %s",
                (event.replacement_order_id, *where),
            )
        elif type(event) in _STATUS:
            await cursor.execute(
                "UPDATE returns SET status = %s, version = %s, updated_at = %s WHERE id = %s",
                (_STATUS[type(event)], *where),
            )
        return []
