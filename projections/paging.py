"""Keyset pagination with opaque cursors."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.errors import InvalidValue

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Page:
    """Where a list starts and how it is ordered."""

    sort_column: str
    descending: bool
    limit: int
    after: tuple[Any, str] | None  # (sort value, tie-breaker) of the last row already seen
    tiebreak: str = "id"  # a unique column that orders rows with equal sort values

    def order_sql(self) -> str:
        """ORDER BY clause: the sort column, then id as tie-breaker."""
        direction = "DESC" if self.descending else "ASC"
        return f"ORDER BY {self.sort_column} {direction}, {self.tiebreak} {direction}"

    def where_sql(self) -> tuple[str, list[Any]]:
        """Predicate that skips rows up to the cursor (or TRUE)."""
        if self.after is None:
            return "TRUE", []
        op = "<" if self.descending else ">"
        return (
            f"({self.sort_column}, {self.tiebreak}) {op} (%s, %s)",
            [self.after[0], self.after[1]],
        )


def parse_page(
    *,
    sort: str | None,
    cursor: str | None,
    limit: int | None,
    columns: dict[str, str],
    default: str,
    tiebreak: str = "id",
) -> Page:
    """Validate `?sort=`, `?cursor=`, `?limit=` against the sortable `columns` (wire → SQL)."""
    sort = sort or default
    descending = sort.startswith("-")
    field = sort.lstrip("-")
    if field not in columns:
        raise InvalidValue("sort", f"sortable fields: {', '.join(sorted(columns))}")
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidValue("limit", f"must be between 1 and {MAX_LIMIT}")
    after = None
    if cursor:
        try:
            decoded = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode() + b"=="))
            if decoded[0] != sort or len(decoded) != 3:
                raise ValueError("cursor for another sort order")
            after = (decoded[1], str(decoded[2]))
        except (ValueError, TypeError, IndexError, msgspec.DecodeError):
            raise InvalidValue("cursor", "not a cursor of this list") from None
    return Page(
        sort_column=columns[field],
        descending=descending,
        limit=limit,
        after=after,
        tiebreak=tiebreak,
    )


def next_cursor(page: Page, sort: str, rows: list[dict[str, Any]], key: str) -> str | None:
    """The cursor after the last row, or None when the list ended."""
    if len(rows) < page.limit:
        return None
    last = rows[-1]
    payload = msgspec.json.encode([sort, last[key], str(last[page.tiebreak])])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, its wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def newest_rows(
    connection: AsyncConnection[Any], table: str, equal: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    """Rows of `table` (a name of ours, never input) whose columns equal the given values
    (None means any), newest first."""
    wanted = {column: value for column, value in equal.items() if value is not None}
    where = " AND ".join([f"{column} = %s" for column in wanted] or ["TRUE"])
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT * FROM {table} WHERE {where} ORDER BY created_at DESC, id LIMIT %s",
            [*wanted.values(), limit],
        )
        return await cursor.fetchall()
