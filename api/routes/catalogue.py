"""Product routes."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Parameter
from psycopg import AsyncConnection

from api.auth import Principal, requires
from api.responses import created, done
from api.views import product_view
from application.catalogue import (
    CreateProduct,
    UpdateProduct,
    archive_product,
    create_product,
    publish_product,
    update_product,
)
from application.context import CommandContext
from application.permissions import Permission, allows
from application.store import EventStore
from domain.catalogue import ProductStatus
from projections.paging import parse_page
from projections.product_queries import (
    PRODUCT_SORTS,
    ProductPage,
    ProductView,
    get_product,
    list_products,
)


class ProductController(Controller):
    """The product catalogue."""

    path = "/products"
    tags = ["catalogue"]

    @post(
        guards=[requires(Permission.CATALOGUE_WRITE), requires(Permission.PRICES_WRITE)],
        sync_to_thread=True,
    )
    def create(
        self, data: CreateProduct, store: EventStore, context: CommandContext
    ) -> Response[ProductView]:
        """Create a draft product (its SKU must be unique)."""
        outcome = create_product(store, context, data)
        product = outcome.value
        return created(product_view(product), outcome.position, f"/api/v1/products/{product.id}")

    @get(guards=[requires(Permission.CATALOGUE_READ)])
    async def index(
        self,
        reader: AsyncConnection[Any],
        q: str | None = None,
        category: str | None = None,
        status: ProductStatus | None = None,
        low_stock: Annotated[bool, Parameter(query="lowStock")] = False,
        sort: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> ProductPage:
        """Products, filtered and paginated."""
        page = parse_page(
            sort=sort, cursor=cursor, limit=limit, columns=PRODUCT_SORTS, default="createdAt"
        )
        return await list_products(
            reader,
            page,
            sort or "createdAt",
            q=q,
            category=category,
            status=status,
            low_stock=low_stock,
        )

    @get("/{product_id:uuid}", guards=[requires(Permission.CATALOGUE_READ)])
    async def get_one(self, product_id: UUID, reader: AsyncConnection[Any]) -> ProductView:
        """One product."""
        product = await get_product(reader, product_id)
        if product is None:
            raise NotFoundException(f"product {product_id} not found")
        return product

    @patch("/{product_id:uuid}", guards=[requires(Permission.CATALOGUE_WRITE)], sync_to_thread=True)
    def update(
        self,
        product_id: UUID,
        data: UpdateProduct,
        store: EventStore,
        context: CommandContext,
        principal: Principal,
        if_match: int | None,
    ) -> Response[ProductView]:
        """Change some fields; price and cost need the prices permission."""
        if data.changes_prices() and not allows(principal.role, Permission.PRICES_WRITE):
            raise PermissionDeniedException(f"the {principal.role} role may not change prices")
        outcome = update_product(store, context, product_id, data, if_match=if_match)
        return done(product_view(outcome.value), outcome.position)

    @delete(
        "/{product_id:uuid}",
        guards=[requires(Permission.CATALOGUE_WRITE)],
        status_code=200,
        sync_to_thread=True,
    )
    def archive(
        self, product_id: UUID, store: EventStore, context: CommandContext, if_match: int | None
    ) -> Response[ProductView]:
        """Archive (products are never erased: their history stays)."""
        outcome = archive_product(store, context, product_id, if_match=if_match)
        return done(product_view(outcome.value), outcome.position)

    @post(
        "/{product_id:uuid}/publish",
        guards=[requires(Permission.CATALOGUE_WRITE)],
        sync_to_thread=True,
    )
    def publish(
        self, product_id: UUID, store: EventStore, context: CommandContext, if_match: int | None
    ) -> Response[ProductView]:
        """Make the product sellable."""
        outcome = publish_product(store, context, product_id, if_match=if_match)
        return done(product_view(outcome.value), outcome.position)
