"""Read model of stock locations."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol
from psycopg import AsyncCursor

from domain.locations import Location
from projections.base import Change, EventInfo

DDL = """
CREATE TABLE IF NOT EXISTS locations (
    id uuid PRIMARY KEY,
    code text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    address text NOT NULL,
    active boolean NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL
);
"""


class LocationsProjection:
    """One row per location."""

    name = "locations"
    ddl = DDL
    tables: tuple[str, ...] = ("locations",)
    reads: tuple[str, ...] = ()

    def handles(self, event: DomainEventProtocol[Any]) -> bool:
        """Location events only."""
        return isinstance(event, Location.Created | Location.Renamed | Location.Deactivated)

    async def apply(
        self, cursor: AsyncCursor[Any], event: DomainEventProtocol[Any], info: EventInfo
    ) -> list[Change]:
        """Insert on creation, update otherwise."""
        version = event.originator_version
        if isinstance(event, Location.Created):
            await cursor.execute(
                "INSERT INTO locations (id, code, name, kind, address, active, version,"
                " created_at) VALUES (%s, %s, %s, %s, %s, true, %s, %s)",
                (
                    event.originator_id,
                    event.code,
                    event.name,
                    event.kind,
                    event.address,
                    version,
                    info.timestamp,
                ),
            )
        elif isinstance(event, Location.Renamed):
            await cursor.execute(
                "UPDATE locations SET name = %s, address = %s, version = %s WHERE id = %s",
                (event.name, event.address, version, event.originator_id),
            )
        else:
            await cursor.execute(
                "UPDATE locations SET active = false, version = %s WHERE id = %s",
                (version, event.originator_id),
            )
        return []
