"""Commands on stock locations."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

from application.company import company_settings
from application.context import CommandContext
from application.store import EventStore, Outcome, UnitOfWork
from application.uniqueness import claim_key
from domain.locations import Location
from domain.values import normalise_sku

LOCATION_CODE_KEY = "location-code"


class CreateLocation(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Open a warehouse or store."""

    code: str
    name: str
    kind: Literal["warehouse", "store"] = "warehouse"
    address: str = ""


def create_location(
    store: EventStore, context: CommandContext, command: CreateLocation
) -> Outcome[Location]:
    """Create a location with a unique code."""

    def decide(unit: UnitOfWork) -> Location:
        # Location codes follow the same spelling rules as SKUs (short, case-insensitive).
        code = normalise_sku(command.code, "code")
        location = Location.create(
            code=code, name=command.name, kind=command.kind, address=command.address
        )
        claim_key(unit, LOCATION_CODE_KEY, code, location.id)
        unit.add(location)
        settings = company_settings(unit)
        if settings.default_location_id is None:
            settings.choose_default_location(location.id)
        return location

    return store.execute(context, decide)


class UpdateLocation(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """Rename a location or change its address."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    address: str | msgspec.UnsetType = msgspec.UNSET


def update_location(
    store: EventStore,
    context: CommandContext,
    location_id: UUID,
    command: UpdateLocation,
    *,
    if_match: int | None = None,
) -> Outcome[Location]:
    """Partial update of a location."""

    def decide(unit: UnitOfWork) -> Location:
        location = unit.get(Location, location_id, version=if_match)
        location.rename(
            name=location.name if command.name is msgspec.UNSET else command.name,
            address=location.address if command.address is msgspec.UNSET else command.address,
        )
        return location

    return store.execute(context, decide)


def deactivate_location(
    store: EventStore, context: CommandContext, location_id: UUID, *, if_match: int | None = None
) -> Outcome[Location]:
    """Stop using a location (no new stock items there; history stays)."""

    def decide(unit: UnitOfWork) -> Location:
        location = unit.get(Location, location_id, version=if_match)
        location.deactivate()
        return location

    return store.execute(context, decide)
