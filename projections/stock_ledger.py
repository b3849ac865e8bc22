"""The stock ledger: every change of on-hand units, with who, why and which document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.inventory import StockItem
from projections.base import Change, EventInfo, Stamped
from projections.movements import MOVING_ON_HAND, movement_of

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
        """Stock item events that can change on hand (a count that changes none writes none)."""
        return type(event) in MOVING_ON_HAND

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Append the movement with the balance the stock levels row now shows."""
        return await self.apply_batch(cursor, [(event, info)])

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped]
    ) -> list[Change]:
        """Append the movements; each balance is the row's final on hand minus what came after."""
        moves = [(e, i, movement_of(e)) for e, i in events]
        await cursor.execute(
            "SELECT stock_item_id, product_id, location_id, on_hand FROM stock_levels"
            " WHERE stock_item_id = ANY(%s)",
            (list({e.originator_id for e, _, _ in moves}),),
        )
        items = {row[0]: row[1:] for row in await cursor.fetchall()}
        balances = {item: on_hand for item, (_, _, on_hand) in items.items()}
        rows: list[tuple[Any, ...]] = []
        for event, info, move in reversed(moves):
            found = items.get(event.originator_id)
            if found is None or move is None or move.on_hand == 0:
                continue
            product_id, location_id, _ = found
            unit_cost = event.unit_cost if isinstance(event, StockItem.Received) else None
            rows.append(
                (
                    info.position,
                    event.originator_id,
                    product_id,
                    location_id,
                    move.kind,
                    move.on_hand,
                    balances[event.originator_id],
                    unit_cost.amount if unit_cost else None,
                    unit_cost.currency if unit_cost else None,
                    move.reason,
                    move.document,
                    info.actor,
                    info.timestamp,
                )
            )
            balances[event.originator_id] -= move.on_hand
        if rows:  # COPY: a tenth of the client CPU of binding arrays to unnest(...)
            async with cursor.copy(
                "COPY stock_moves (position, stock_item_id, product_id, location_id, kind,"
                " quantity, on_hand_after, unit_cost, currency, reason, document, actor, at)"
                " FROM STDIN"
            ) as copy:
                for row in reversed(rows):
                    await copy.write_row(row)
        return []
