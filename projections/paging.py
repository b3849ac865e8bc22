"""Keyset pagination with opaque cursors."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.errors import InvalidValue

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
_BIGINT = 2**63
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,19}")  # ASCII only: int() also reads other digits


@dataclass(frozen=True)
class Kind:
    """What a sort key holds: `read` turns a cursor's JSON value into it or raises ValueError."""

    description: str
    read: Callable[[Any], Any]


def _timestamp(value: Any) -> datetime:
    found = datetime.fromisoformat(value) if isinstance(value, str) else None
    if found is None or found.tzinfo is None:
        raise ValueError(value)
    return found


def _integer(value: Any) -> int:
    # Tie-breakers travel as text ("123").
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -_BIGINT <= value < _BIGINT:
        raise ValueError(value)
    return value


def _text(value: Any) -> str:
    # PostgreSQL stores no NUL; psycopg cannot send a lone surrogate (raises UnicodeEncodeError).
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError(value)
    value.encode("utf-8")
    return value


def _uuid(value: Any) -> UUID:
    if not isinstance(value, str):
        raise ValueError(value)
    return UUID(value)


TIMESTAMP = Kind("a timestamp with a timezone", _timestamp)
INTEGER = Kind("a 64-bit integer", _integer)
TEXT = Kind("text", _text)
UUID_KIND = Kind("a UUID", _uuid)

# What each sort or tie-breaker column holds, by SQL name (all NOT NULL): a cursor's values are
# read as these, so only well-typed values reach PostgreSQL. A new sortable column needs a line.
COLUMN_KINDS: dict[str, Kind] = {
    "id": UUID_KIND,
    "position": INTEGER,
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "placed_at": TIMESTAMP,
    "name": TEXT,
    "email": TEXT,
    "role": TEXT,
    "sku": TEXT,
    "status": TEXT,
    "order_number": TEXT,
    "price_amount": INTEGER,
    "total": INTEGER,
    "order_count": INTEGER,
}


def _decode(cursor: str) -> Any:
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode() + b"=="))
    # Bad base64, bad JSON, bytes that are not UTF-8, nesting deeper than the decoder goes.
    except (ValueError, msgspec.DecodeError, RecursionError):
        raise InvalidValue("cursor", "not a cursor: not base64-encoded JSON") from None


def read_cursor(cursor: str, head: str, kinds: list[Kind], what: str) -> list[Any]:
    """A cursor's values after its `head` (a sort order, a report name), each read as its kind;
    InvalidValue("cursor") unless the cursor is `[head, *values]` with well-typed values."""
    decoded = _decode(cursor)
    if not isinstance(decoded, list) or decoded[:1] != [head]:
        raise InvalidValue("cursor", f"not a cursor of this {what}")
    if len(decoded) != len(kinds) + 1:
        raise InvalidValue("cursor", f"not a cursor of this {what}: {len(kinds)} values expected")
    values = []
    for n, (kind, value) in enumerate(zip(kinds, decoded[1:], strict=True), start=1):
        try:
            values.append(kind.read(value))
        except ValueError:  # UnicodeEncodeError included
            detail = f"not a cursor of this {what}: value {n} is not {kind.description}"
            raise InvalidValue("cursor", detail) from None
    return values


def _kind(column: str) -> Kind:
    if column not in COLUMN_KINDS:
        raise LookupError(f"projections/paging.py has no kind for the sort column {column!r}")
    return COLUMN_KINDS[column]


@dataclass(frozen=True)
class Page:
    """Where a list starts and how it is ordered."""

    sort_column: str
    descending: bool
    limit: int
    after: tuple[Any, Any] | None  # (sort value, tie-breaker) of the last row already seen
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
    column = columns[field]
    kinds = [_kind(column), _kind(tiebreak)]  # also when no cursor: a missing kind shows early
    after = None
    if cursor:
        value, tie = read_cursor(cursor, sort, kinds, f"list sorted by {sort}")
        after = (value, tie)
    return Page(
        sort_column=column,
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
