"""Moving-average cost per product: what stock on hand is worth, and what sold goods cost.

Per product over all locations: `units` on hand and their `value` (minor units). A receipt
adds its quantity at its unit cost; every other change of on hand (issue, adjustment, count)
moves units at the current average, value × units ÷ units on hand, rounded half up; so the
value of the last unit out is exactly what was left and the value never drifts. Transfers
between locations change neither. `unit_cost` is the average, rounded; it keeps the last
average while nothing is on hand (stock that reappears without a receipt is valued at it, or
at the product's catalogue cost before any receipt). A receipt in another currency than the
stock's (the product's cost currency changed) revalues what is on hand at that receipt's cost.

`product_cost_history` keeps the average after every event that changed it (and after a
product's first movement), at that event's position: what the product cost at any point of
the history, as sales take it for an order placed there.

`value` is numeric: it adds up movements without limit (one adjustment of the most units at
the highest average is already 10**24). The average never exceeds the highest unit cost a
receipt or the catalogue can carry (Money's range): `unit_cost` fits a bigint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.inventory import StockItem
from projections.base import Change, RunApplier, Stamped
from projections.movements import MOVING_ON_HAND, movement_of
from projections.unnest import columns
from projections.widen import widen_to_numeric

DDL = """
CREATE TABLE IF NOT EXISTS product_costs (
    product_id uuid PRIMARY KEY,
    currency text NOT NULL,
    units bigint NOT NULL,
    value numeric NOT NULL,
    unit_cost bigint NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS product_cost_history (
    product_id uuid NOT NULL,
    position bigint NOT NULL,
    unit_cost bigint NOT NULL,
    PRIMARY KEY (product_id, position)
);
-- Costs recorded before the history was kept start it, at the beginning.
INSERT INTO product_cost_history (product_id, position, unit_cost)
SELECT c.product_id, 0, c.unit_cost FROM product_costs c
WHERE NOT EXISTS (SELECT FROM product_cost_history h WHERE h.product_id = c.product_id);
""" + widen_to_numeric("product_costs", "value")

_MOVING = MOVING_ON_HAND - {StockItem.TransferredOut, StockItem.TransferredIn}


def rounded_ratio(numerator: int, denominator: int) -> int:
    """numerator ÷ denominator rounded half up (denominator > 0, numerator ≥ 0)."""
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if 2 * remainder >= denominator else 0)


def next_cost(
    units: int, value: int, unit_cost: int, quantity: int, receipt_cost: int | None
) -> tuple[int, int, int]:
    """Units, value and average unit cost after `quantity` units move in (+) or out (−).

    `receipt_cost` is the unit cost of a receipt; other movements use the average.
    """
    if receipt_cost is not None:
        units, value = units + quantity, value + quantity * receipt_cost
    elif quantity < 0 and units > 0:
        taken = min(-quantity, units)
        units, value = units + quantity, value - rounded_ratio(value * taken, units)
    else:
        units, value = units + quantity, value + quantity * unit_cost
    if units <= 0:
        return units, 0, unit_cost  # nothing on hand: the last average stands
    return units, value, rounded_ratio(value, units)


class ProductCostsProjection(RunApplier):
    """One row per stocked product; runs after StockLevelsProjection (it reads product ids)."""

    name = "product_costs"
    ddl = DDL
    tables: tuple[str, ...] = ("product_costs", "product_cost_history")
    reads: tuple[str, ...] = ("products", "stock_levels")

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Changes of on hand, except transfers (a count that changes none changes nothing)."""
        return type(event) in _MOVING

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Move each product's units and value event by event, then write each product once
        and every change of its average."""
        await cursor.execute(
            "SELECT s.stock_item_id, s.product_id, c.currency, c.units, c.value, c.unit_cost,"
            " p.cost_amount, p.currency FROM stock_levels s LEFT JOIN product_costs c"
            " ON c.product_id = s.product_id LEFT JOIN products p ON p.id = s.product_id"
            " WHERE s.stock_item_id = ANY(%s)",
            (list({event.originator_id for event, _ in events}),),
        )
        product_of: dict[UUID, UUID] = {}
        costs: dict[UUID, list[Any]] = {}
        recorded: dict[UUID, int | None] = {}  # the product's last recorded average
        for (
            item,
            product_id,
            currency,
            units,
            value,
            unit_cost,
            cost,
            cost_currency,
        ) in await cursor.fetchall():
            product_of[item] = product_id
            recorded[product_id] = unit_cost
            if currency is None:  # the product's first stock: start from its catalogue cost
                currency, units, value, unit_cost = cost_currency or "EUR", 0, 0, cost or 0
            value = int(value)  # numeric comes as a Decimal: the sums below stay exact ints
            costs[product_id] = [currency, units, value, unit_cost, None]
        history: list[tuple[UUID, int, int]] = []
        for event, info in events:
            product_id = product_of.get(event.originator_id)
            move = movement_of(event)
            if product_id is None or move is None or move.on_hand == 0:
                continue
            cost = costs[product_id]
            currency, units, value, unit_cost, _ = cost
            receipt_cost = None
            if isinstance(event, StockItem.Received):
                receipt_cost = event.unit_cost.amount
                if event.unit_cost.currency != currency:
                    currency, value = event.unit_cost.currency, units * receipt_cost
            units, value, unit_cost = next_cost(units, value, unit_cost, move.on_hand, receipt_cost)
            cost[:] = [currency, units, value, unit_cost, info.timestamp]
            if recorded[product_id] != unit_cost:
                recorded[product_id] = unit_cost
                history.append((product_id, info.position, unit_cost))
        moved = [(product_id, *cost) for product_id, cost in costs.items() if cost[4] is not None]
        if moved:
            await cursor.execute(
                "INSERT INTO product_costs (product_id, currency, units, value, unit_cost,"
                " updated_at) SELECT * FROM unnest(%b::uuid[], %b::text[], %b::bigint[],"
                " %b::numeric[], %b::bigint[], %b::timestamptz[]) ON CONFLICT (product_id)"
                " DO UPDATE SET currency = EXCLUDED.currency, units = EXCLUDED.units,"
                " value = EXCLUDED.value, unit_cost = EXCLUDED.unit_cost,"
                " updated_at = EXCLUDED.updated_at",
                columns(moved),
            )
        if history:
            await cursor.execute(
                "INSERT INTO product_cost_history (product_id, position, unit_cost)"
                " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::bigint[])",
                columns(history),
            )
        return []
