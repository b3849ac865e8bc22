"""Command answers built from the aggregate a command returned (not from the read side)."""

from __future__ import annotations

from domain.catalogue import Product
from domain.inventory import StockItem
from domain.locations import Location
from projections.locations_queries import LocationView
from projections.product_queries import ProductView
from projections.stock_queries import StockItemView


def product_view(product: Product) -> ProductView:
    """The wire shape of a product."""
    return ProductView(
        id=product.id,
        sku=product.sku,
        name=product.name,
        description=product.description,
        category=product.category,
        price=product.price,
        cost=product.cost,
        reorder_level=product.reorder_level,
        reorder_quantity=product.reorder_quantity,
        supplier_id=product.supplier_id,
        allow_backorder=product.allow_backorder,
        status=product.status,
        version=product.version,
        created_at=product.created_on,
        updated_at=product.modified_on,
    )


def location_view(location: Location) -> LocationView:
    """The wire shape of a location."""
    return LocationView(
        id=location.id,
        code=location.code,
        name=location.name,
        kind=location.kind,
        address=location.address,
        active=location.active,
        version=location.version,
    )


def stock_item_view(item: StockItem) -> StockItemView:
    """The wire shape of one product's stock at one location."""
    return StockItemView(
        product_id=item.product_id,
        location_id=item.location_id,
        on_hand=item.on_hand,
        reserved=item.reserved,
        available=item.available,
        version=item.version,
    )
