"""Which schema a connection reads and writes read models in: its `search_path`."""

from __future__ import annotations

import re
from typing import Any

from psycopg import AsyncConnection, sql

from projections.base import Projection, ProjectionGroup

NEXT_SUFFIX = "_next"  # the version a rebuild is building
OLD_SUFFIX = "_old"  # the version a rebuild replaced, until it is dropped

_QUALIFIED = re.compile(r"\b(?:read|read_next|read_old)\.[a-z_]", re.IGNORECASE)


def next_schema(group: ProjectionGroup) -> str:
    """Where a rebuild of `group` builds the next version of its tables."""
    return group.schema + NEXT_SUFFIX


def old_schema(group: ProjectionGroup) -> str:
    """Where the replaced version of `group`'s tables waits to be dropped."""
    return group.schema + OLD_SUFFIX


def search_path_option(*schemas: str) -> str:
    """libpq `options` that make a new connection look up tables in `schemas` only."""
    for schema in schemas:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
            raise ValueError(f"not a plain schema name: {schema!r}")
    return f"-c search_path={','.join(schemas)}"


def reader_options(groups: tuple[ProjectionGroup, ...]) -> dict[str, Any]:
    """Connection keyword arguments for readers of every group's live tables."""
    return {"options": search_path_option(*dict.fromkeys(group.schema for group in groups))}


async def set_search_path(connection: AsyncConnection[Any], schema: str) -> None:
    """Make `connection` read and write read models in `schema` (for the session)."""
    await connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))


def qualified_names(projection: Projection) -> list[str]:
    """Schema-qualified table names in a projection's DDL (there must be none)."""
    return _QUALIFIED.findall(projection.ddl)
