"""Queries on the locations read model."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import class_row


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


async def list_locations(connection: AsyncConnection[Any]) -> list[LocationView]:
    """Every location, by code."""
    async with connection.cursor(row_factory=class_row(LocationView)) as cursor:
        await cursor.execute(f"SELECT {_COLUMNS} FROM read.locations ORDER BY code")
        return await cursor.fetchall()


async def get_location(connection: AsyncConnection[Any], location_id: UUID) -> LocationView | None:
    """One location, or None."""
    async with connection.cursor(row_factory=class_row(LocationView)) as cursor:
        await cursor.execute(f"SELECT {_COLUMNS} FROM read.locations WHERE id = %s", (location_id,))
        return await cursor.fetchone()
