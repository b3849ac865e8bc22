"""GET /reports/{name}: a report as JSON pages or as a streamed CSV download."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Parameter
from litestar.response import Stream
from psycopg import AsyncConnection

from api.auth import requires
from api.cache import AnswerCache
from api.dependencies import services
from api.reporting import csv_answer, snapshot_answer
from application.permissions import Permission
from domain.errors import NotFound
from projections.report_queries import ReportPage, ReportParams, report_page
from projections.reports import REPORTS

Format = Literal["json", "csv"]


async def csv_needs_export(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """A CSV download is an export: it needs reports:export (employees may only look)."""
    if connection.query_params.get("format") == "csv":
        await requires(Permission.REPORTS_EXPORT)(connection, handler)


class ReportController(Controller):
    """Stock, valuation and sales reports."""

    path = "/reports"
    tags = ["reports"]

    @get(
        "/{name:str}",
        guards=[requires(Permission.REPORTS_READ), csv_needs_export],
        description="Reports: " + ", ".join(REPORTS) + ". Dates are the company's local dates.",
    )
    async def report(
        self,
        name: str,
        state: State,
        reader: AsyncConnection[Any],
        cache: AnswerCache,
        format: Format = "json",
        start_date: Annotated[date | None, Parameter(query="startDate")] = None,
        end_date: Annotated[date | None, Parameter(query="endDate")] = None,
        product_id: Annotated[UUID | None, Parameter(query="productId")] = None,
        location_id: Annotated[UUID | None, Parameter(query="locationId")] = None,
        customer_id: Annotated[UUID | None, Parameter(query="customerId")] = None,
        currency: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Response[ReportPage] | Stream:
        """One page of the report (JSON, `?cursor=` for the next) or all of it as CSV."""
        report = REPORTS.get(name)
        if report is None:
            raise NotFound(f"no report {name!r}; reports: {', '.join(REPORTS)}")
        params = ReportParams(
            start=start_date,
            end=end_date,
            product_id=product_id,
            location_id=location_id,
            customer_id=customer_id,
            currency=currency,
        )
        params.where(report)  # refuse filters the report does not have, before any work
        if format == "csv":
            return await csv_answer(services(state).pool, report, params, f"{name}.csv")

        async def compute(position: int, tz: str, chosen: str) -> ReportPage:
            resolved = ReportParams(**{**vars(params), "timezone": tz, "currency": chosen})
            return await report_page(
                reader, report, resolved, cursor=cursor, limit=limit, position=position
            )

        key = {**vars(params), "name": name, "cursor": cursor, "limit": limit}
        return await snapshot_answer(reader, cache, "report", key, ReportPage, compute)
