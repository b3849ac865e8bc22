"""Analytics and dashboard routes: figures from the read models, cached per position."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Response, get
from litestar.params import Parameter
from psycopg import AsyncConnection

from api.auth import requires
from api.cache import AnswerCache
from api.reporting import snapshot_answer
from application.permissions import Permission
from projections.analytics_queries import GroupBy, SalesAnalytics, SalesFilter, sales_analytics
from projections.dashboard_queries import (
    DashboardMetrics,
    dashboard_metrics,
    dashboard_period,
    local_today,
)
from projections.valuation_queries import InventoryMetrics, inventory_metrics

CurrencyParam = Annotated[
    str | None, Parameter(description="ISO 4217 code; default: the company's default currency")
]


class AnalyticsController(Controller):
    """Sales analytics, inventory metrics and the dashboard."""

    path = "/"
    tags = ["reports"]
    guards = [requires(Permission.REPORTS_READ)]

    @get("/analytics/sales")
    async def sales(
        self,
        reader: AsyncConnection[Any],
        cache: AnswerCache,
        start_date: Annotated[date, Parameter(query="startDate")],
        end_date: Annotated[date, Parameter(query="endDate")],
        group_by: Annotated[GroupBy, Parameter(query="groupBy")] = "day",
        location_id: Annotated[UUID | None, Parameter(query="locationId")] = None,
        product_id: Annotated[UUID | None, Parameter(query="productId")] = None,
        customer_id: Annotated[UUID | None, Parameter(query="customerId")] = None,
        currency: CurrencyParam = None,
    ) -> Response[SalesAnalytics]:
        """Orders, units, revenue, tax, refunds and net per period (in the company's zone)."""
        where = SalesFilter(start_date, end_date, location_id, product_id, customer_id)
        where.check(group_by)

        async def compute(position: int, tz: str, chosen: str) -> SalesAnalytics:
            return await sales_analytics(
                reader, where, group_by, tz=tz, currency=chosen, position=position
            )

        params = {**vars(where), "group_by": group_by, "currency": currency}
        return await snapshot_answer(reader, cache, "sales", params, SalesAnalytics, compute)

    @get("/analytics/inventory/metrics")
    async def inventory(
        self, reader: AsyncConnection[Any], cache: AnswerCache, currency: CurrencyParam = None
    ) -> Response[InventoryMetrics]:
        """Units and value at moving-average cost, per location; low and out of stock."""

        async def compute(position: int, _: str, chosen: str) -> InventoryMetrics:
            return await inventory_metrics(reader, chosen, position)

        params = {"currency": currency}
        return await snapshot_answer(reader, cache, "inventory", params, InventoryMetrics, compute)

    @get("/dashboard/metrics")
    async def dashboard(
        self,
        reader: AsyncConnection[Any],
        cache: AnswerCache,
        start_date: Annotated[date | None, Parameter(query="startDate")] = None,
        end_date: Annotated[date | None, Parameter(query="endDate")] = None,
        currency: CurrencyParam = None,
    ) -> Response[DashboardMetrics]:
        """Key figures for a period (default: the last 30 days) against the one before."""

        async def compute(position: int, tz: str, chosen: str) -> DashboardMetrics:
            end = end_date or await local_today(reader, tz)
            return await dashboard_metrics(
                reader, start_date, end, tz=tz, currency=chosen, position=position
            )

        if end_date:
            dashboard_period(start_date, end_date)  # refused before the cache is asked
        # Without dates the answer depends on the day in the company's zone: the quarter hour
        # is part of the key (every zone's offset is a multiple of 15 minutes).
        now = datetime.now(UTC)
        quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        params = {"start": start_date, "end": end_date, "currency": currency, "at": quarter}
        return await snapshot_answer(reader, cache, "dashboard", params, DashboardMetrics, compute)
