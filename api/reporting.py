"""Answers of report, analytics and dashboard routes: each says the position it is consistent
with (`X-PMS-Position` and a `position` field), JSON cached, CSV streamed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from litestar import Response
from litestar.response import Stream
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.cache import AnswerCache
from api.responses import POSITION_HEADER
from projections.company_settings import reporting_zone
from projections.positions import consistent_read
from projections.report_queries import ReportParams, report_csv
from projections.reports import Report

T = TypeVar("T")

Compute = Callable[[int, str, str], Awaitable[T]]  # (position, time zone, currency) -> answer


async def snapshot_answer(
    reader: AsyncConnection[Any],
    cache: AnswerCache,
    kind: str,
    params: Mapping[str, Any],
    answer_type: type[T],
    compute: Compute[T],
) -> Response[T]:
    """`compute`'s answer from one snapshot of the read models (or the cache, at its position)."""
    async with consistent_read(reader) as position:

        async def fresh() -> T:
            tz, currency = await reporting_zone(reader)
            return await compute(position, tz, str(params.get("currency") or currency))

        answer = await cache.answer(kind, position, params, answer_type, fresh)
    return Response(answer, headers={POSITION_HEADER: str(position)})


async def _csv_chunks(
    pool: AsyncConnectionPool, report: Report, params: ReportParams
) -> AsyncGenerator[bytes, None]:
    """First the position (as text), then the CSV; holds one pooled connection throughout."""
    async with pool.connection() as connection, consistent_read(connection) as position:
        tz, currency = await reporting_zone(connection)
        chosen = ReportParams(
            **{**vars(params), "timezone": tz, "currency": params.currency or currency}
        )
        yield str(position).encode()
        async for chunk in report_csv(connection, report, chosen):
            yield chunk


async def csv_answer(
    pool: AsyncConnectionPool, report: Report, params: ReportParams, filename: str
) -> Stream:
    """The report as a streamed CSV download, with the position of its snapshot."""
    chunks = _csv_chunks(pool, report, params)
    position = (await anext(chunks)).decode()
    body: AsyncIterator[bytes] = chunks
    return Stream(
        body,
        media_type="text/csv",
        headers={
            POSITION_HEADER: position,
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
