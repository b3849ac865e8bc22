"""Queries on the locations read model."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import class_row

from projections.paging import contains_pattern


class LocationView(msgspec.Struct, rename="camel", frozen=True):
    """A location as clients see it."""

    id: UUID
    code: str
    name: str
    kind: str
    address: str
    active: bool
    version: int


_COLUMNS = "id, code, name, kind, address, active, version"


async def list_locations(
    connection: AsyncConnection[Any], *, q: str | None = None, active: bool | None = None
) -> list[LocationView]:
    """Locations by code, optionally searched by code, name or address."""
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    if q:
        clauses.append("(code ILIKE %s OR name ILIKE %s OR address ILIKE %s)")
        pattern = contains_pattern(q)
        params += [pattern, pattern, pattern]
    if active is not None:
        clauses.append("active = %s")
        params.append(active)
    async with connection.cursor(row_factory=class_row(LocationView)) as cursor:
        await cursor.execute(
            f"SELECT {_COLUMNS} FROM locations WHERE {' AND '.join(clauses)} ORDER BY code",
            params,
        )
        return await cursor.fetchall()


async def get_location(connection: AsyncConnection[Any], location_id: UUID) -> LocationView | None:
    """One location, or None."""
    async with connection.cursor(row_factory=class_row(LocationView)) as cursor:
        await cursor.execute(f"SELECT {_COLUMNS} FROM locations WHERE id = %s", (location_id,))
        return await cursor.fetchone()
