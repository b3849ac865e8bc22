"""Commands on stock locations."""

from __future__ import annotations

from typing import Literal

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
        code = normalise_sku(command.code)
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
