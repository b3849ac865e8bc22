"""Dashboard figures: a period's sales against the period before, and stock right now."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import msgspec
from psycopg import AsyncConnection

from domain.errors import InvalidValue
from domain.values import Money
from projections.analytics_queries import SalesFilter, sales_by_bucket
from projections.valuation_queries import inventory_value, stock_counts

DEFAULT_DAYS = 30
OPEN_RETURN_STATUSES = ["requested", "approved", "partially_received", "received"]


class DashboardMetrics(msgspec.Struct, rename="camel", frozen=True):
    """Key figures; revenue and orders are those placed in [startDate, endDate]."""

    start_date: date
    end_date: date
    currency: str
    total_revenue: Money
    total_orders: int
    pending_orders: int
    total_inventory_value: Money
    low_stock_items: int
    open_returns: int
    revenue_change_percent: float | None  # None when the previous period had no revenue
    position: int


async def local_today(connection: AsyncConnection[Any], tz: str) -> date:
    """Today's date in the time zone `tz`, by the database's clock."""
    cursor = await connection.execute("SELECT (now() AT TIME ZONE %s)::date", (tz,))
    row = await cursor.fetchone()
    assert row is not None
    value: date = row[0]
    return value


async def _revenue_and_orders(
    connection: AsyncConnection[Any], start: date, end: date, tz: str, currency: str
) -> tuple[int, int]:
    found = await sales_by_bucket(connection, SalesFilter(start, end), "month", tz, currency)
    return sum(row[2] for row in found.values()), sum(row[0] for row in found.values())


async def _count(connection: AsyncConnection[Any], query: str, *params: Any) -> int:
    cursor = await connection.execute(query, params)
    row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def dashboard_period(start: date | None, end: date) -> tuple[date, date]:
    """The period's first day (by default DEFAULT_DAYS days up to `end`) and the first day of
    the as long period before it; InvalidValue when the calendar (from 0001-01-01) cannot hold
    them."""
    field = "startDate" if start else "endDate"
    try:
        start = start or end - timedelta(days=DEFAULT_DAYS - 1)
        SalesFilter(start, end).check("day")
        return start, start - timedelta(days=(end - start).days + 1)
    except OverflowError:
        detail = "the period and the as long one before it must begin on or after 0001-01-01"
        raise InvalidValue(field, detail) from None


async def dashboard_metrics(
    connection: AsyncConnection[Any],
    start: date | None,
    end: date,
    *,
    tz: str,
    currency: str,
    position: int,
) -> DashboardMetrics:
    """The dashboard for [start, end] (see dashboard_period) against the period just before."""
    start, before = dashboard_period(start, end)
    revenue, orders = await _revenue_and_orders(connection, start, end, tz, currency)
    previous, _ = await _revenue_and_orders(
        connection, before, start - timedelta(days=1), tz, currency
    )
    change = round((revenue - previous) * 100 / previous, 1) if previous else None
    low, _ = await stock_counts(connection)
    open_returns = 0
    if await _count(connection, "SELECT count(*) FROM pg_class WHERE oid = to_regclass('returns')"):
        open_returns = await _count(
            connection,
            "SELECT count(*) FROM returns WHERE status = ANY(%s)",
            OPEN_RETURN_STATUSES,
        )
    return DashboardMetrics(
        start_date=start,
        end_date=end,
        currency=currency,
        total_revenue=Money(revenue, currency),
        total_orders=orders,
        pending_orders=await _count(
            connection, "SELECT count(*) FROM orders WHERE status = 'pending'"
        ),
        total_inventory_value=Money(await inventory_value(connection, currency), currency),
        low_stock_items=low,
        open_returns=open_returns,
        revenue_change_percent=change,
        position=position,
    )
