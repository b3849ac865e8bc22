"""Location routes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.exceptions import NotFoundException
from psycopg import AsyncConnection

from api.auth import requires
from api.responses import created, done
from api.views import location_view
from application.context import CommandContext
from application.locations import (
    CreateLocation,
    UpdateLocation,
    create_location,
    deactivate_location,
    update_location,
)
from application.permissions import Permission
from application.store import EventStore
from projections.locations_queries import LocationView, get_location, list_locations


class LocationController(Controller):
    """Warehouses and stores."""

    path = "/locations"
    tags = ["inventory"]

    @post(guards=[requires(Permission.LOCATIONS_WRITE)], sync_to_thread=True)
    def create(
        self, data: CreateLocation, store: EventStore, context: CommandContext
    ) -> Response[LocationView]:
        """Open a location (its code must be unique)."""
        outcome = create_location(store, context, data)
        location = outcome.value
        return created(
            location_view(location), outcome.position, f"/api/v1/locations/{location.id}"
        )

    @get(guards=[requires(Permission.INVENTORY_READ)])
    async def index(
        self, reader: AsyncConnection[Any], q: str | None = None, active: bool | None = None
    ) -> dict[str, Any]:
        """Locations (there are few: one page), searchable by code, name or address."""
        return {"items": await list_locations(reader, q=q, active=active), "nextCursor": None}

    @get("/{location_id:uuid}", guards=[requires(Permission.INVENTORY_READ)])
    async def get_one(self, location_id: UUID, reader: AsyncConnection[Any]) -> LocationView:
        """One location."""
        location = await get_location(reader, location_id)
        if location is None:
            raise NotFoundException(f"location {location_id} not found")
        return location

    @patch(
        "/{location_id:uuid}", guards=[requires(Permission.LOCATIONS_WRITE)], sync_to_thread=True
    )
    def update(
        self,
        location_id: UUID,
        data: UpdateLocation,
        store: EventStore,
        context: CommandContext,
        if_match: int | None,
    ) -> Response[LocationView]:
        """Rename or change the address."""
        outcome = update_location(store, context, location_id, data, if_match=if_match)
        return done(location_view(outcome.value), outcome.position)

    @delete(
        "/{location_id:uuid}",
        guards=[requires(Permission.LOCATIONS_WRITE)],
        status_code=200,
        sync_to_thread=True,
    )
    def deactivate(
        self, location_id: UUID, store: EventStore, context: CommandContext, if_match: int | None
    ) -> Response[LocationView]:
        """Deactivate (its stock history stays)."""
        outcome = deactivate_location(store, context, location_id, if_match=if_match)
        return done(location_view(outcome.value), outcome.position)
