"""Running a report: one page as JSON rows, or every row through a server-side cursor."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from domain.errors import InvalidValue
from domain.values import CURRENCY_EXPONENTS, Money
from projections.paging import DEFAULT_LIMIT, INTEGER, MAX_LIMIT, TEXT, Kind, read_cursor
from projections.reports import Report

CURSOR_ROWS = 2000  # rows fetched per round trip from the server-side cursor
CSV_CHUNK_ROWS = 500  # rows per chunk of the streamed answer


class ReportPage(msgspec.Struct, rename="camel", frozen=True):
    """One page of a report, consistent with the read models at `position`."""

    report: str
    position: int
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class ReportParams:
    """What a request asks of a report (filters a report does not have are refused)."""

    start: date | None = None
    end: date | None = None
    product_id: UUID | None = None
    location_id: UUID | None = None
    customer_id: UUID | None = None
    currency: str | None = None  # None: the company's default currency
    timezone: str = "UTC"  # the company's, to read dates in

    def where(self, report: Report) -> tuple[str, dict[str, Any]]:
        """The report's `{where}` conditions and all parameters."""
        clauses: list[str] = []
        params: dict[str, Any] = {"tz": self.timezone, "currency": self.currency}
        for name, column in report.filters.items():
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{column} = %({name})s")
                params[name] = value
        for name in ("product_id", "location_id", "customer_id"):
            if getattr(self, name) is not None and name not in report.filters:
                raise InvalidValue(_camel(name), f"{report.name} has no such filter")
        if (self.start or self.end) and report.dated is None:
            raise InvalidValue("startDate", f"{report.name} is not by date")
        if self.start is not None:
            clauses.append(f"{report.dated} >= %(start)s::timestamp AT TIME ZONE %(tz)s")
            params["start"] = self.start
        if self.end is not None:
            clauses.append(f"{report.dated} < (%(end)s::date + 1)::timestamp AT TIME ZONE %(tz)s")
            params["end"] = self.end
        if report.currency is not None:
            clauses.append(f"{report.currency} = %(currency)s")
        return "".join(f" AND {clause}" for clause in clauses), params


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _sql(report: Report, where: str, *, after: bool, limit: bool) -> str:
    keys = ", ".join(f"r.{key}" for key in report.keys)
    marks = ", ".join(f"%(_after{n})s" for n in range(len(report.keys)))
    keyset = f" WHERE ({keys}) > ({marks})" if after else ""
    return f"SELECT * FROM ({report.select.format(where=where)}) r{keyset} ORDER BY {keys}" + (
        " LIMIT %(_limit)s" if limit else ""
    )


def encode_cursor(report: Report, row: dict[str, Any]) -> str:
    """An opaque cursor after `row`."""
    payload = msgspec.json.encode([report.name, *(row[key] for key in report.keys)])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


# What each report's keys hold, in order (see the `_k` columns in projections/reports.py).
KEY_KINDS: dict[str, tuple[Kind, ...]] = {
    "stock-balance": (TEXT, TEXT, TEXT),
    "stock-ledger": (INTEGER,),
    "valuation": (TEXT, TEXT, TEXT),
    "sales-by-product": (TEXT, TEXT),
    "sales-by-customer": (TEXT, TEXT),
    "top-products": (INTEGER,),
}


def decode_cursor(report: Report, cursor: str) -> list[Any]:
    """The key values a cursor of this report continues after, each of its key's type."""
    kinds = KEY_KINDS.get(report.name)
    if kinds is None or len(kinds) != len(report.keys):
        raise LookupError(f"KEY_KINDS does not describe the keys of the report {report.name!r}")
    return read_cursor(cursor, report.name, list(kinds), "report")


def check_limit(limit: int | None) -> int:
    """The page size asked for, within bounds."""
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidValue("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def _json_row(report: Report, row: dict[str, Any]) -> dict[str, Any]:
    item = {name: row[name] for name in report.columns}
    for amount, currency in report.money.items():
        if item[amount] is not None and row[currency] is not None:
            item[amount] = Money(int(item[amount]), row[currency])
    return item


async def report_page(
    connection: AsyncConnection[Any],
    report: Report,
    params: ReportParams,
    *,
    cursor: str | None,
    limit: int | None,
    position: int,
) -> ReportPage:
    """One page of the report, in key order, after `cursor`."""
    where, values = params.where(report)
    values["_limit"] = check_limit(limit)
    if cursor:
        for n, key in enumerate(decode_cursor(report, cursor)):
            values[f"_after{n}"] = key
    async with connection.cursor(row_factory=dict_row) as rows:
        await rows.execute(_sql(report, where, after=bool(cursor), limit=True), values)
        found = await rows.fetchall()
    more = len(found) == values["_limit"]
    return ReportPage(
        report=report.name,
        position=position,
        items=[_json_row(report, row) for row in found],
        next_cursor=encode_cursor(report, found[-1]) if more else None,
    )


def _cell(value: Any, currency: str | None, money: bool) -> Any:
    if value is None:
        return ""
    if money and currency:
        exponent = CURRENCY_EXPONENTS.get(currency, 2)
        sign = "-" if value < 0 else ""
        units, minor = divmod(abs(int(value)), 10**exponent)
        return f"{sign}{units}.{minor:0{exponent}d}" if exponent else f"{sign}{units}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def report_csv(
    connection: AsyncConnection[Any], report: Report, params: ReportParams
) -> AsyncIterator[bytes]:
    """Every row as CSV (header first), read through a server-side cursor in the caller's
    transaction: memory stays flat however long the report."""
    where, values = params.where(report)
    columns = report.columns
    money = {columns.index(a): columns.index(c) for a, c in report.money.items()}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    async with connection.cursor(name=f"report_{uuid4().hex}", row_factory=dict_row) as rows:
        rows.itersize = CURSOR_ROWS
        await rows.execute(_sql(report, where, after=False, limit=False), values)
        count = 0
        async for row in rows:
            cells = [row[name] for name in columns]
            writer.writerow(
                [
                    _cell(cell, cells[money[n]] if n in money else None, n in money)
                    for n, cell in enumerate(cells)
                ]
            )
            count += 1
            if count % CSV_CHUNK_ROWS == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue().encode()
