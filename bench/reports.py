"""Report queries over HTTP, computed (answer cache emptied before each) and from the cache.

Runs on the HTTP phase's database once its read models have caught up: the products, stock
moves and orders that the HTTP measurements created. One client, one request at a time, so the
figures are per-query latencies; the uncached one is the baseline of the cached one.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
import uvloop

from bench.http_client import Connection, encode_request
from bench.report import Results, percentile

HOST = "127.0.0.1"
REPORTS = (
    "stock-balance",
    "stock-ledger",
    "valuation",
    "sales-by-product",
    "sales-by-customer",
    "top-products",
)
ANSWERS = "pms:answers:*"  # api/cache.py's keys


@dataclass(frozen=True)
class ReportsPlan:
    """How many requests per report and run."""

    uncached: int = 15
    cached: int = 100
    reps: int = 3


async def _forget_answers(redis: aioredis.Redis) -> None:
    keys = [key async for key in redis.scan_iter(match=ANSWERS, count=1000)]
    if keys:
        await redis.delete(*keys)


async def _measure(
    port: int, token: str, redis_url: str, name: str, plan: ReportsPlan
) -> tuple[list[float], list[float], int]:
    connection = Connection(HOST, port)
    redis = aioredis.Redis.from_url(redis_url)
    raw = encode_request("GET", f"/api/v1/reports/{name}", token)
    uncached: list[float] = []
    cached: list[float] = []
    size = 0
    try:
        for _ in range(plan.uncached):
            await _forget_answers(redis)
            started = time.perf_counter()
            answer = await connection.request(raw)
            uncached.append((time.perf_counter() - started) * 1000)
            if answer.status != 200:
                raise RuntimeError(f"report {name}: {answer.status} {answer.body[:300]!r}")
            size = len(answer.body)
        await connection.request(raw)  # fills the cache
        for _ in range(plan.cached):
            started = time.perf_counter()
            answer = await connection.request(raw)
            cached.append((time.perf_counter() - started) * 1000)
    finally:
        await connection.close()
        await redis.aclose()
    return uncached, cached, size


def run(port: int, token: str, redis_url: str, plan: ReportsPlan, results: Results) -> None:
    """Every report, `reps` times."""
    for rep in range(plan.reps):
        line = []
        for name in REPORTS:
            uncached, cached, size = uvloop.run(_measure(port, token, redis_url, name, plan))
            computed, hit = percentile(uncached, 0.5), percentile(cached, 0.5)
            results.add(f"reports.{name}.uncached", f"{name} computed", "ms", computed, bytes=size)
            results.add(f"reports.{name}.cached", f"{name} from the cache", "ms", hit)
            line.append(f"{name} {computed:.1f}/{hit:.1f}")
        print(
            f"  reports run {rep + 1}, ms computed/cached: " + ", ".join(line),
            file=sys.stderr,
            flush=True,
        )


def rows(results: Results) -> list[list[str]]:
    """Rows of the reports table."""
    found = []
    for name in REPORTS:
        computed = results.figures.get(f"reports.{name}.uncached")
        hit = results.figures.get(f"reports.{name}.cached")
        if computed is None or hit is None:
            continue
        size = max((int(d.get("bytes", 0)) for d in computed.details), default=0)
        speedup = computed.median / hit.median if hit.median else float("nan")
        found.append([name, computed.text(), hit.text(), f"{speedup:.1f}×", f"{size:,}"])
    return found
