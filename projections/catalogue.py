"""Read model of products, for lists, search and details."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.catalogue import Product
from projections.base import Change, EventInfo

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
    Product.PriceChanged: "price_amount = %(price_amount)s",
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
            params[f"{money}_amount"] = params.pop(money).amount
    return params


class ProductsProjection:
    """One row per product."""

    name = "products"
    ddl = DDL
    tables: tuple[str, ...] = ("products",)

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Product events only."""
        return isinstance(event, Product.Created) or type(event) in _UPDATES

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Insert on creation, update the changed columns otherwise."""
        params = _params(event)
        params["version"] = event.originator_version
        params["at"] = info.timestamp
        if isinstance(event, Product.Created):
            params["currency"] = event.price.currency
            await cursor.execute(
                "INSERT INTO products (id, sku, name, description, category, price_amount,"
                " cost_amount, currency, reorder_level, reorder_quantity, supplier_id,"
                " allow_backorder, status, version, created_at, updated_at) VALUES"
                " (%(originator_id)s, %(sku)s, %(name)s, %(description)s, %(category)s,"
                " %(price_amount)s, %(cost_amount)s, %(currency)s, %(reorder_level)s,"
                " %(reorder_quantity)s, %(supplier_id)s, %(allow_backorder)s, 'draft',"
                " %(version)s, %(at)s, %(at)s)",
                params,
            )
        else:
            sets = _UPDATES[type(event)]
            await cursor.execute(
                f"UPDATE products SET {sets}, version = %(version)s, updated_at = %(at)s"
                " WHERE id = %(originator_id)s",
                params,
            )
        return []
