"""Read model of products, for lists, search and details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.catalogue import Product
from projections.base import Change, RunApplier, Stamped
from projections.unnest import columns

DDL = """
CREATE TABLE IF NOT EXISTS products (
    id uuid PRIMARY KEY,
    sku text NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    category text,
    price_amount bigint NOT NULL,
    cost_amount bigint NOT NULL,
    currency text NOT NULL,
    reorder_level integer NOT NULL,
    reorder_quantity integer NOT NULL,
    supplier_id uuid,
    allow_backorder boolean NOT NULL,
    status text NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS products_sku ON products (sku);
CREATE INDEX IF NOT EXISTS products_category ON products (category, id);
CREATE INDEX IF NOT EXISTS products_status ON products (status, id);
"""

_UPDATES: dict[type[Any], str] = {
    Product.DetailsChanged: "name = %(name)s, description = %(description)s,"
    " category = %(category)s, supplier_id = %(supplier_id)s",
    Product.SkuChanged: "sku = %(sku)s",
    # Price and cost change currency together (the domain keeps them alike); the row's
    # currency follows the price.
    Product.PriceChanged: "price_amount = %(price_amount)s, currency = %(price_currency)s",
    Product.CostChanged: "cost_amount = %(cost_amount)s",
    Product.ReorderPolicyChanged: "reorder_level = %(reorder_level)s,"
    " reorder_quantity = %(reorder_quantity)s",
    Product.BackorderPolicyChanged: "allow_backorder = %(allow_backorder)s",
    Product.Published: "status = 'published'",
    Product.Archived: "status = 'archived'",
}


def _params(event: DomainEventProtocol[Any]) -> dict[str, Any]:
    params = dict(vars(event))
    for money in ("price", "cost"):
        if money in params:
            value = params.pop(money)
            params[f"{money}_amount"], params[f"{money}_currency"] = value.amount, value.currency
    return params


class ProductsProjection(RunApplier):
    """One row per product; products created one after another are inserted together."""

    name = "products"
    ddl = DDL
    tables: tuple[str, ...] = ("products",)
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Product events only."""
        return isinstance(event, Product.Created) or type(event) in _UPDATES

    def batches(self, event: DomainEventProtocol[Any]) -> bool:
        """Creations: a new row changes no row that events before it in a run read (a
        product's stock events come after its creation: stock commands require the product)."""
        return isinstance(event, Product.Created)

    async def apply_batch(
        self, cursor: AsyncCursor[Any], events: Sequence[Stamped], *, announce: bool = True
    ) -> list[Change]:
        """Insert the created products in one statement, then update the changed columns."""
        created = [(e, i) for e, i in events if isinstance(e, Product.Created)]
        if created:
            await cursor.execute(
                _INSERT,
                columns(
                    (
                        e.originator_id,
                        e.sku,
                        e.name,
                        e.description,
                        e.category,
                        e.price.amount,
                        e.cost.amount,
                        e.price.currency,
                        e.reorder_level,
                        e.reorder_quantity,
                        e.supplier_id,
                        e.allow_backorder,
                        e.originator_version,
                        i.timestamp,
                    )
                    for e, i in created
                ),
            )
        for event, info in events:
            if not isinstance(event, Product.Created):
                params = _params(event)
                params["version"] = event.originator_version
                params["at"] = info.timestamp
                sets = _UPDATES[type(event)]
                await cursor.execute(
                    f"UPDATE products SET {sets}, version = %(version)s, updated_at = %(at)s"
                    " WHERE id = %(originator_id)s",
                    params,
                )
        return []


_INSERT = (
    "INSERT INTO products (id, sku, name, description, category, price_amount, cost_amount,"
    " currency, reorder_level, reorder_quantity, supplier_id, allow_backorder, status, version,"
    " created_at, updated_at) SELECT id, sku, name, description, category, price_amount,"
    " cost_amount, currency, reorder_level, reorder_quantity, supplier_id, allow_backorder,"
    " 'draft', version, at, at FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::text[],"
    " %b::text[], %b::bigint[], %b::bigint[], %b::text[], %b::int[], %b::int[], %b::uuid[],"
    " %b::boolean[], %b::int[], %b::timestamptz[]) AS c(id, sku, name, description, category,"
    " price_amount, cost_amount, currency, reorder_level, reorder_quantity, supplier_id,"
    " allow_backorder, version, at)"
)
