"""Read model of on-hand, reserved and available units per product and location."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.inventory import StockItem
from projections.base import Change, EventInfo
from projections.movements import movement_of

DDL = """
CREATE TABLE IF NOT EXISTS stock_levels (
    stock_item_id uuid PRIMARY KEY,
    product_id uuid NOT NULL,
    location_id uuid NOT NULL,
    on_hand bigint NOT NULL,
    reserved bigint NOT NULL,
    backordered bigint NOT NULL DEFAULT 0,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
ALTER TABLE stock_levels ADD COLUMN IF NOT EXISTS backordered bigint NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS stock_levels_product ON stock_levels (product_id);
CREATE INDEX IF NOT EXISTS stock_levels_location ON stock_levels (location_id);
"""

_RETURNING = " RETURNING product_id, location_id, on_hand, reserved"


class StockLevelsProjection:
    """One row per stock item; publishes `inventory_update` for every change."""

    name = "stock_levels"
    ddl = DDL
    tables: tuple[str, ...] = ("stock_levels",)

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Stock item events."""
        return isinstance(event, StockItem.Event)

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Open a row or move its counts, then describe the new state."""
        if isinstance(event, StockItem.Opened):
            await cursor.execute(
                "INSERT INTO stock_levels (stock_item_id, product_id, location_id, on_hand,"
                " reserved, backordered, version, updated_at)"
                " VALUES (%s, %s, %s, 0, 0, 0, %s, %s)" + _RETURNING,
                (
                    event.originator_id,
                    event.product_id,
                    event.location_id,
                    event.originator_version,
                    info.timestamp,
                ),
            )
        else:
            move = movement_of(event)
            if move is None:
                return []
            await cursor.execute(
                "UPDATE stock_levels SET on_hand = on_hand + %s, reserved = reserved + %s,"
                " backordered = backordered + %s, version = %s, updated_at = %s"
                " WHERE stock_item_id = %s" + _RETURNING,
                (
                    move.on_hand,
                    move.reserved,
                    move.backordered,
                    event.originator_version,
                    info.timestamp,
                    event.originator_id,
                ),
            )
        row = await cursor.fetchone()
        if row is None:
            return []
        product_id, location_id, on_hand, reserved = row
        return [
            Change(
                topic=f"inventory.{product_id}",
                event="inventory_update",
                data={
                    "productId": str(product_id),
                    "locationId": str(location_id),
                    "onHand": on_hand,
                    "reserved": reserved,
                    "available": on_hand - reserved,
                },
            )
        ]
