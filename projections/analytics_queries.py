"""Sales analytics: orders, units, revenue, tax, refunds and net per day, week or month."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal
from uuid import UUID

import msgspec
from psycopg import AsyncConnection

from domain.errors import InvalidValue
from domain.values import Money

GroupBy = Literal["day", "week", "month"]
MAX_BUCKETS = 1000


class SalesFigures(msgspec.Struct, rename="camel", frozen=True):
    """What was sold in a period."""

    orders: int
    units: int
    revenue: Money
    tax: Money
    refunds: Money
    net: Money


class SalesBucket(msgspec.Struct, rename="camel", frozen=True):
    """One day, ISO week (`2026-W47`) or month (`2026-11`), clipped to the range asked for."""

    period: str
    start: date
    end: date
    orders: int
    units: int
    revenue: Money
    tax: Money
    refunds: Money
    net: Money


class SalesAnalytics(msgspec.Struct, rename="camel", frozen=True):
    """Sales per period and in total, in one currency, periods in the company's time zone."""

    start_date: date
    end_date: date
    group_by: str
    timezone: str
    currency: str
    buckets: list[SalesBucket]
    totals: SalesFigures
    position: int


@dataclass(frozen=True)
class SalesFilter:
    """Which sales to count: a period of local dates (both included) and optional ids."""

    start: date
    end: date
    location_id: UUID | None = None
    product_id: UUID | None = None
    customer_id: UUID | None = None

    def check(self, group_by: str) -> None:
        """Refuse an empty range or one with too many buckets."""
        if self.end < self.start:
            raise InvalidValue("endDate", "must not be before startDate")
        if _bucket_count(self.start, self.end, group_by) > MAX_BUCKETS:
            raise InvalidValue("groupBy", f"at most {MAX_BUCKETS} periods; group by a longer one")

    def clauses(self) -> tuple[str, dict[str, Any]]:
        """SQL conditions (AND ...) and their parameters for the ids given."""
        sql, params = "", {}
        for column, value in (
            ("location_id", self.location_id),
            ("product_id", self.product_id),
            ("customer_id", self.customer_id),
        ):
            if value is not None:
                sql += f" AND {column} = %({column})s"
                params[column] = value
        return sql, params


def _first_day(start: date, group_by: str) -> date:
    """The first day of the bucket `start` falls in (0001-01-01 is a Monday: no overflow)."""
    if group_by == "day":
        return start
    if group_by == "week":
        return start - timedelta(days=start.weekday())
    if group_by == "month":
        return start.replace(day=1)
    raise InvalidValue("groupBy", "must be day, week or month")


def _bucket_count(start: date, end: date, group_by: str) -> int:
    """How many buckets overlap [start, end], without listing them."""
    first = _first_day(start, group_by)  # also refuses an unknown group_by
    if group_by == "month":
        return (end.year - start.year) * 12 + end.month - start.month + 1
    return (end - first).days // (7 if group_by == "week" else 1) + 1


def _bucket_starts(start: date, end: date, group_by: str) -> list[date]:
    """First day of every bucket that overlaps [start, end]."""
    first = _first_day(start, group_by)
    count = _bucket_count(start, end, group_by)
    if group_by == "month":
        months = [first.year * 12 + first.month - 1 + n for n in range(count)]
        return [date(month // 12, month % 12 + 1, 1) for month in months]
    step = timedelta(weeks=1) if group_by == "week" else timedelta(days=1)
    return [first + n * step for n in range(count)]


def _label(first: date, end: date, group_by: str) -> tuple[str, date]:
    """A bucket's name and its last day within a range ending on `end` (computed within the
    range, so a bucket that would run past 9999-12-31 is no overflow)."""
    if group_by == "day":
        return first.isoformat(), first
    if group_by == "week":
        year, week, _ = first.isocalendar()
        return f"{year}-W{week:02d}", first + timedelta(days=min(6, (end - first).days))
    last = calendar.monthrange(first.year, first.month)[1]
    return f"{first.year}-{first.month:02d}", min(first.replace(day=last), end)


_SALES = """
SELECT date_trunc(%(unit)s, placed_at AT TIME ZONE %(tz)s)::date,
    count(DISTINCT order_id), sum(quantity), sum(revenue), sum(tax)
FROM sales_lines
WHERE NOT cancelled AND currency = %(currency)s
    AND placed_at >= %(start)s::timestamp AT TIME ZONE %(tz)s
    AND placed_at < (%(end)s::date + 1)::timestamp AT TIME ZONE %(tz)s {filters}
GROUP BY 1
"""

_REFUNDS = """
SELECT date_trunc(%(unit)s, refunded_at AT TIME ZONE %(tz)s)::date, sum(amount)
FROM sales_refunds
WHERE currency = %(currency)s
    AND refunded_at >= %(start)s::timestamp AT TIME ZONE %(tz)s
    AND refunded_at < (%(end)s::date + 1)::timestamp AT TIME ZONE %(tz)s {filters}
GROUP BY 1
"""


def _figures(currency: str, orders: int, units: int, amounts: tuple[int, int, int]) -> Any:
    revenue, tax, refunds = amounts
    return {
        "orders": orders,
        "units": units,
        "revenue": Money(revenue, currency),
        "tax": Money(tax, currency),
        "refunds": Money(refunds, currency),
        "net": Money(revenue - refunds, currency),
    }


async def sales_by_bucket(
    connection: AsyncConnection[Any], where: SalesFilter, group_by: str, tz: str, currency: str
) -> dict[date, tuple[int, int, int, int, int]]:
    """Orders, units, revenue, tax and refunds per bucket start (only buckets with sales)."""
    filters, params = where.clauses()
    params |= {
        "unit": group_by,
        "tz": tz,
        "currency": currency,
        "start": where.start,
        "end": where.end,
    }
    found: dict[date, list[int]] = {}
    cursor = await connection.execute(_SALES.format(filters=filters), params)
    for bucket, orders, units, revenue, tax in await cursor.fetchall():
        found[bucket] = [int(orders), int(units), int(revenue), int(tax), 0]
    cursor = await connection.execute(_REFUNDS.format(filters=filters), params)
    for bucket, refunds in await cursor.fetchall():
        found.setdefault(bucket, [0, 0, 0, 0, 0])[4] = int(refunds)
    return {bucket: (a, b, c, d, e) for bucket, (a, b, c, d, e) in found.items()}


async def sales_analytics(
    connection: AsyncConnection[Any],
    where: SalesFilter,
    group_by: str,
    *,
    tz: str,
    currency: str,
    position: int,
) -> SalesAnalytics:
    """Every bucket of the range, empty ones included, and the totals."""
    where.check(group_by)
    found = await sales_by_bucket(connection, where, group_by, tz, currency)
    buckets = []
    for first in _bucket_starts(where.start, where.end, group_by):
        period, last = _label(first, where.end, group_by)
        orders, units, revenue, tax, refunds = found.get(first, (0, 0, 0, 0, 0))
        buckets.append(
            SalesBucket(
                period=period,
                start=max(first, where.start),
                end=last,
                **_figures(currency, orders, units, (revenue, tax, refunds)),
            )
        )
    sums = [sum(row[n] for row in found.values()) for n in range(5)]
    return SalesAnalytics(
        start_date=where.start,
        end_date=where.end,
        group_by=group_by,
        timezone=tz,
        currency=currency,
        buckets=buckets,
        totals=SalesFigures(**_figures(currency, sums[0], sums[1], (sums[2], sums[3], sums[4]))),
        position=position,
    )
