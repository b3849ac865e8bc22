"""How far each projection group has applied the event store."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from projections.base import SCHEMA


async def group_positions(connection: AsyncConnection[Any]) -> dict[str, int]:
    """The applied position of every projection group."""
    cursor = await connection.execute(
        f"SELECT group_name, position FROM {SCHEMA}.projection_positions"
    )
    return {str(name): int(position) for name, position in await cursor.fetchall()}


async def lowest_position(connection: AsyncConnection[Any], groups: tuple[str, ...]) -> int:
    """The smallest applied position among `groups` (0 if any has not started)."""
    positions = await group_positions(connection)
    return min((positions.get(name, 0) for name in groups), default=0)
