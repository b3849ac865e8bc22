"""Customer routes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.exceptions import NotFoundException
from psycopg import AsyncConnection

from api.auth import requires
from api.responses import created, done
from api.views import customer_view
from application.context import CommandContext
from application.customers import (
    CreateCustomer,
    UpdateCustomer,
    create_customer,
    deactivate_customer,
    update_customer,
)
from application.permissions import Permission
from application.store import EventStore
from projections.customer_queries import (
    CUSTOMER_SORTS,
    CustomerHistory,
    CustomerPage,
    CustomerView,
    customer_history,
    get_customer,
    list_customers,
)
from projections.paging import parse_page


class CustomerController(Controller):
    """Customers and their order history."""

    path = "/customers"
    tags = ["parties"]

    @post(guards=[requires(Permission.ORDERS_WRITE)], sync_to_thread=True)
    def create(
        self, data: CreateCustomer, store: EventStore, context: CommandContext
    ) -> Response[CustomerView]:
        """Register a customer (email unique)."""
        outcome = create_customer(store, context, data)
        customer = outcome.value
        return created(
            customer_view(customer), outcome.position, f"/api/v1/customers/{customer.id}"
        )

    @get(guards=[requires(Permission.ORDERS_READ)])
    async def index(
        self,
        reader: AsyncConnection[Any],
        q: str | None = None,
        active: bool | None = None,
        sort: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> CustomerPage:
        """Customers, searchable by name and email."""
        page = parse_page(
            sort=sort, cursor=cursor, limit=limit, columns=CUSTOMER_SORTS, default="name"
        )
        return await list_customers(reader, page, sort or "name", q=q, active=active)

    @get("/{customer_id:uuid}", guards=[requires(Permission.ORDERS_READ)])
    async def get_one(self, customer_id: UUID, reader: AsyncConnection[Any]) -> CustomerView:
        """One customer."""
        customer = await get_customer(reader, customer_id)
        if customer is None:
            raise NotFoundException(f"customer {customer_id} not found")
        return customer

    @get("/{customer_id:uuid}/history", guards=[requires(Permission.ORDERS_READ)])
    async def history(self, customer_id: UUID, reader: AsyncConnection[Any]) -> CustomerHistory:
        """Order count, spend and recent orders."""
        history = await customer_history(reader, customer_id)
        if history is None:
            raise NotFoundException(f"customer {customer_id} not found")
        return history

    @patch("/{customer_id:uuid}", guards=[requires(Permission.ORDERS_WRITE)], sync_to_thread=True)
    def update(
        self,
        customer_id: UUID,
        data: UpdateCustomer,
        store: EventStore,
        context: CommandContext,
        if_match: int | None,
    ) -> Response[CustomerView]:
        """Change some fields."""
        outcome = update_customer(store, context, customer_id, data, if_match=if_match)
        return done(customer_view(outcome.value), outcome.position)

    @delete(
        "/{customer_id:uuid}",
        guards=[requires(Permission.ORDERS_WRITE)],
        status_code=200,
        sync_to_thread=True,
    )
    def deactivate(
        self, customer_id: UUID, store: EventStore, context: CommandContext, if_match: int | None
    ) -> Response[CustomerView]:
        """Deactivate (history is kept)."""
        outcome = deactivate_customer(store, context, customer_id, if_match=if_match)
        return done(customer_view(outcome.value), outcome.position)
