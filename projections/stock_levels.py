"""Read model of on-hand, reserved and available units per product and location."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.inventory import StockItem
from projections.base import Change, RunApplier, Stamped
from projections.movements import movement_of
from projections.unnest import columns

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


class StockLevelsProjection(RunApplier):
    """One row per stock item; publishes `inventory_update` for every change."""

    name = "stock_levels"
    ddl = DDL
    tables: tuple[str, ...] = ("stock_levels",)
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Stock item events."""
        return isinstance(event, StockItem.Event)

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Open the new rows, move each row once by the sum of its events' movements, and
        (when announced) describe the state after each event: the final one minus the
        movements after it."""
        opened = [(e, i) for e, i in events if isinstance(e, StockItem.Opened)]
        if opened:
            await cursor.execute(
                "INSERT INTO stock_levels (stock_item_id, product_id, location_id, on_hand,"
                " reserved, backordered, version, updated_at)"
                " SELECT id, product_id, location_id, 0, 0, 0, version, at FROM unnest("
                "%b::uuid[], %b::uuid[], %b::uuid[], %b::int[], %b::timestamptz[])"
                " AS o(id, product_id, location_id, version, at)",
                columns(
                    (
                        e.originator_id,
                        e.product_id,
                        e.location_id,
                        e.originator_version,
                        i.timestamp,
                    )
                    for e, i in opened
                ),
            )
        moves = [(e, i, movement_of(e)) for e, i in events]
        moved: dict[UUID, Level] = {}
        for event, info, move in moves:
            if move is not None:
                level = moved.setdefault(event.originator_id, Level())
                level.add(move.on_hand, move.reserved, move.backordered)
                level.version, level.at = event.originator_version, info.timestamp
        if moved:
            await cursor.execute(
                _MOVE + _RETURNING if announce else _MOVE,
                columns(
                    (item, m.on_hand, m.reserved, m.backordered, m.version, m.at)
                    for item, m in moved.items()
                ),
            )
        if not announce:
            return []
        states: dict[UUID, tuple[str, str, int, int]] = {
            e.originator_id: (str(e.product_id), str(e.location_id), 0, 0) for e, _ in opened
        }
        if moved:
            for item, product_id, location_id, on_hand, reserved in await cursor.fetchall():
                states[item] = (str(product_id), str(location_id), on_hand, reserved)
        changes: list[Change] = []
        for event, info, move in reversed(moves):
            state = states.get(event.originator_id)
            if state is None or (move is None and not isinstance(event, StockItem.Opened)):
                continue
            product_id, location_id, on_hand, reserved = state
            changes.append(_update(product_id, location_id, on_hand, reserved, info.position))
            if move is not None:
                states[event.originator_id] = (
                    product_id,
                    location_id,
                    on_hand - move.on_hand,
                    reserved - move.reserved,
                )
        changes.reverse()
        return changes


_MOVE = (
    "UPDATE stock_levels s SET on_hand = s.on_hand + d.on_hand,"
    " reserved = s.reserved + d.reserved, backordered = s.backordered + d.backordered,"
    " version = d.version, updated_at = d.at FROM unnest(%b::uuid[], %b::bigint[],"
    " %b::bigint[], %b::bigint[], %b::int[], %b::timestamptz[])"
    " AS d(id, on_hand, reserved, backordered, version, at)"
    " WHERE s.stock_item_id = d.id"
)
_RETURNING = " RETURNING s.stock_item_id, s.product_id, s.location_id, s.on_hand, s.reserved"


@dataclass
class Level:
    """The sum of a run's movements of one stock item, and its last event."""

    on_hand: int = 0
    reserved: int = 0
    backordered: int = 0
    version: int = 0
    at: datetime | None = None

    def add(self, on_hand: int, reserved: int, backordered: int) -> None:
        """Add one event's movement."""
        self.on_hand += on_hand
        self.reserved += reserved
        self.backordered += backordered


def _update(
    product_id: str, location_id: str, on_hand: int, reserved: int, position: int
) -> Change:
    return Change(
        topic=f"inventory.{product_id}",
        event="inventory_update",
        data={
            "productId": product_id,
            "locationId": location_id,
            "onHand": on_hand,
            "reserved": reserved,
            "available": on_hand - reserved,
        },
        position=position,
    )
