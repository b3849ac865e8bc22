"""Queries on the users and API keys read models."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from projections.paging import Page, contains_pattern, next_cursor


class UserView(msgspec.Struct, rename="camel", frozen=True):
    """A user as admins see them (never the password hash)."""

    id: UUID
    email: str
    name: str
    role: str
    department: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class UserPage(msgspec.Struct, rename="camel", frozen=True):
    """One page of the user list."""

    items: list[UserView]
    next_cursor: str | None


class ApiKeyView(msgspec.Struct, rename="camel", frozen=True):
    """An API key without its secret; `prefix` is the public part of the key."""

    id: UUID
    name: str
    role: str
    prefix: str
    active: bool
    version: int
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class ApiKeyPage(msgspec.Struct, rename="camel", frozen=True):
    """One page of the API key list."""

    items: list[ApiKeyView]
    next_cursor: str | None


USER_SORTS = {"createdAt": "created_at", "email": "email", "name": "name", "role": "role"}
API_KEY_SORTS = {"createdAt": "created_at", "name": "name"}

_USER_COLUMNS = "id, email, name, role, department, active, version, created_at, updated_at"
_KEY_COLUMNS = "id, name, role, prefix, active, version, created_at, revoked_at"


async def get_user(connection: AsyncConnection[Any], user_id: UUID) -> UserView | None:
    """One user, or None."""
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        row = await cursor.fetchone()
    return UserView(**row) if row else None


async def list_users(
    connection: AsyncConnection[Any],
    page: Page,
    sort: str,
    *,
    q: str | None = None,
    role: str | None = None,
    active: bool | None = None,
) -> UserPage:
    """Users matching the filters (q: name or email), one page in order."""
    where, params = page.where_sql()
    clauses = [where]
    if q:
        clauses.append("(name ILIKE %s OR email ILIKE %s)")
        params += [contains_pattern(q)] * 2
    if role:
        clauses.append("role = %s")
        params.append(role)
    if active is not None:
        clauses.append("active = %s")
        params.append(active)
    params.append(page.limit)
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT {_USER_COLUMNS}, {page.sort_column} AS sort_key FROM users"
            f" WHERE {' AND '.join(clauses)} {page.order_sql()} LIMIT %s",
            params,
        )
        rows = await cursor.fetchall()
    return UserPage(
        items=[UserView(**{k: v for k, v in row.items() if k != "sort_key"}) for row in rows],
        next_cursor=next_cursor(page, sort, rows, "sort_key"),
    )


async def list_api_keys(
    connection: AsyncConnection[Any], page: Page, sort: str, *, active: bool | None = None
) -> ApiKeyPage:
    """API keys, one page in order (`lastUsedAt` is not in the read model: see api/auth.py)."""
    where, params = page.where_sql()
    clauses = [where]
    if active is not None:
        clauses.append("active = %s")
        params.append(active)
    params.append(page.limit)
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT {_KEY_COLUMNS}, {page.sort_column} AS sort_key FROM api_keys"
            f" WHERE {' AND '.join(clauses)} {page.order_sql()} LIMIT %s",
            params,
        )
        rows = await cursor.fetchall()
    return ApiKeyPage(
        items=[ApiKeyView(**{k: v for k, v in row.items() if k != "sort_key"}) for row in rows],
        next_cursor=next_cursor(page, sort, rows, "sort_key"),
    )
