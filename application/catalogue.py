"""Commands on the product catalogue."""

from __future__ import annotations

from uuid import UUID

import msgspec

from application.context import CommandContext
from application.store import EventStore, Outcome, UnitOfWork
from application.uniqueness import claim_key, move_key
from domain.catalogue import Product
from domain.values import Money, normalise_sku


class CreateProduct(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Create a draft product."""

    sku: str
    name: str
    price: Money
    cost: Money | None = None
    description: str = ""
    category: str | None = None
    reorder_level: int = 0
    reorder_quantity: int = 0
    supplier_id: UUID | None = None
    allow_backorder: bool = False


class UpdateProduct(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Change some fields of a product; absent fields stay as they are."""

    sku: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    category: str | msgspec.UnsetType | None = msgspec.UNSET
    price: Money | msgspec.UnsetType = msgspec.UNSET
    cost: Money | msgspec.UnsetType = msgspec.UNSET
    reorder_level: int | msgspec.UnsetType = msgspec.UNSET
    reorder_quantity: int | msgspec.UnsetType = msgspec.UNSET
    supplier_id: UUID | msgspec.UnsetType | None = msgspec.UNSET
    allow_backorder: bool | msgspec.UnsetType = msgspec.UNSET

    def changes_prices(self) -> bool:
        """Whether the update touches price or cost (not every role may)."""
        return self.price is not msgspec.UNSET or self.cost is not msgspec.UNSET


SKU_KEY = "sku"


def create_product(
    store: EventStore, context: CommandContext, command: CreateProduct
) -> Outcome[Product]:
    """Create a product with a unique SKU."""

    def decide(unit: UnitOfWork) -> Product:
        sku = normalise_sku(command.sku)
        product = Product.create(
            sku=sku,
            name=command.name,
            price=command.price,
            cost=command.cost or Money(0, command.price.currency),
            description=command.description,
            category=command.category,
            reorder_level=command.reorder_level,
            reorder_quantity=command.reorder_quantity,
            supplier_id=command.supplier_id,
            allow_backorder=command.allow_backorder,
        )
        claim_key(unit, SKU_KEY, sku, product.id)
        unit.add(product)
        return product

    return store.execute(context, decide)


def update_product(
    store: EventStore,
    context: CommandContext,
    product_id: UUID,
    command: UpdateProduct,
    *,
    if_match: int | None = None,
) -> Outcome[Product]:
    """Apply a partial update to a product."""

    def decide(unit: UnitOfWork) -> Product:
        product = unit.get(Product, product_id, version=if_match)
        c = command
        if c.sku is not msgspec.UNSET:
            sku = normalise_sku(c.sku)
            if sku != product.sku:
                move_key(unit, SKU_KEY, product.sku, sku, product.id)
                product.change_sku(sku)
        product.change_details(
            name=product.name if c.name is msgspec.UNSET else c.name,
            description=product.description if c.description is msgspec.UNSET else c.description,
            category=product.category if c.category is msgspec.UNSET else c.category,
            supplier_id=product.supplier_id if c.supplier_id is msgspec.UNSET else c.supplier_id,
        )
        product.change_prices(
            price=product.price if c.price is msgspec.UNSET else c.price,
            cost=product.cost if c.cost is msgspec.UNSET else c.cost,
        )
        product.change_reorder_policy(
            reorder_level=(
                product.reorder_level if c.reorder_level is msgspec.UNSET else c.reorder_level
            ),
            reorder_quantity=(
                product.reorder_quantity
                if c.reorder_quantity is msgspec.UNSET
                else c.reorder_quantity
            ),
        )
        if c.allow_backorder is not msgspec.UNSET:
            product.change_backorder_policy(c.allow_backorder)
        return product

    return store.execute(context, decide)


def publish_product(
    store: EventStore, context: CommandContext, product_id: UUID, *, if_match: int | None = None
) -> Outcome[Product]:
    """Make a product sellable."""

    def decide(unit: UnitOfWork) -> Product:
        product = unit.get(Product, product_id, version=if_match)
        product.publish()
        return product

    return store.execute(context, decide)


def archive_product(
    store: EventStore, context: CommandContext, product_id: UUID, *, if_match: int | None = None
) -> Outcome[Product]:
    """Withdraw a product from sale."""

    def decide(unit: UnitOfWork) -> Product:
        product = unit.get(Product, product_id, version=if_match)
        product.archive()
        return product

    return store.execute(context, decide)
