"""The stock ledger: every change of on-hand units, with who, why and which document."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.inventory import StockItem
from projections.base import Change, EventInfo
from projections.movements import movement_of

DDL = """
CREATE TABLE IF NOT EXISTS stock_moves (
    position bigint PRIMARY KEY,
    stock_item_id uuid NOT NULL,
    product_id uuid NOT NULL,
    location_id uuid NOT NULL,
    kind text NOT NULL,
    quantity bigint NOT NULL,
    on_hand_after bigint NOT NULL,
    unit_cost bigint,
    currency text,
    reason text NOT NULL,
    document text,
    actor text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS stock_moves_product ON stock_moves (product_id, position);
CREATE INDEX IF NOT EXISTS stock_moves_location ON stock_moves (location_id, position);
CREATE INDEX IF NOT EXISTS stock_moves_at ON stock_moves (at);
"""


class StockLedgerProjection:
    """One row per on-hand movement; runs after StockLevelsProjection in the same group."""

    name = "stock_ledger"
    ddl = DDL
    tables: tuple[str, ...] = ("stock_moves",)

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Stock item events that change on hand."""
        move = movement_of(event)
        return move is not None and move.on_hand != 0

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Append the movement with the balance the stock levels row now shows."""
        move = movement_of(event)
        assert move is not None
        unit_cost = event.unit_cost if isinstance(event, StockItem.Received) else None
        await cursor.execute(
            "INSERT INTO stock_moves (position, stock_item_id, product_id, location_id,"
            " kind, quantity, on_hand_after, unit_cost, currency, reason, document, actor, at)"
            " SELECT %s, stock_item_id, product_id, location_id, %s, %s, on_hand, %s, %s, %s,"
            " %s, %s, %s FROM stock_levels WHERE stock_item_id = %s",
            (
                info.position,
                move.kind,
                move.on_hand,
                unit_cost.amount if unit_cost else None,
                unit_cost.currency if unit_cost else None,
                move.reason,
                move.document,
                info.actor,
                info.timestamp,
                event.originator_id,
            ),
        )
        return []
