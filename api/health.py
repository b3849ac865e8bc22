"""GET /health: is every dependency reachable, and how far behind are the projections."""

from __future__ import annotations

import resource
import time
from datetime import UTC, datetime
from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from api.dependencies import services
from api.services import Services
from projections.positions import group_status
from projections.registry import projection_groups

MEMORY_LIMIT_MB = 512
PROJECTION_LAG_LIMIT = 10_000


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        extra = await check()
    except ProjectionsFailed as failed:
        return {"healthy": False, **failed.details}
    except Exception as exc:
        return {"healthy": False, "error": type(exc).__name__}
    latency = round((time.perf_counter() - started) * 1000, 2)
    return {"healthy": True, "latency": latency, **(extra or {})}


async def _database(found: Services) -> dict[str, Any] | None:
    async with found.pool.connection(timeout=2) as connection:
        await connection.execute("SELECT 1")
    return None


async def _nats(found: Services) -> dict[str, Any] | None:
    if not found.nats.is_connected:
        raise ConnectionError("nats disconnected")
    await found.nats.flush(timeout=2)
    return None


async def _redis(found: Services) -> dict[str, Any] | None:
    await found.redis.ping()
    return None


async def _projections(found: Services) -> dict[str, Any]:
    async with found.pool.connection(timeout=2) as connection:
        statuses = [await group_status(connection, group) for group in projection_groups()]
    groups: dict[str, Any] = {}
    for status in statuses:
        groups[status.name] = {
            "position": status.position,
            "lag": min(status.lag_events, PROJECTION_LAG_LIMIT),
            "lagSeconds": status.lag_seconds,
            "state": status.state,
        }
        if status.state == "failed":
            groups[status.name].update(failedPosition=status.failed_position, error=status.error)
        if status.rebuild is not None:
            groups[status.name]["rebuild"] = {
                "state": status.rebuild.state,
                "running": status.rebuild.running,
                "done": status.rebuild.done,
                "total": status.rebuild.total,
            }
    worst = max((g["lag"] for g in groups.values()), default=0)
    failed = [name for name, g in groups.items() if g["state"] == "failed"]
    if failed:
        raise ProjectionsFailed(worst, groups)
    return {"lag": worst, "groups": groups}


class ProjectionsFailed(Exception):
    """A projection group stopped on an event it cannot apply."""

    def __init__(self, lag: int, groups: dict[str, Any]) -> None:
        super().__init__("projection group failed")
        self.details = {"lag": lag, "groups": groups}


@get("/health", opt={"exclude_from_auth": True}, tags=["operations"])
async def health(state: State) -> Response[dict[str, Any]]:
    """Status of each dependency; 503 when one is down."""
    found = services(state)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    checks: dict[str, Any] = {
        "database": await _timed(lambda: _database(found)),
        "nats": await _timed(lambda: _nats(found)),
        "redis": await _timed(lambda: _redis(found)),
        "memory": {"healthy": rss_mb < MEMORY_LIMIT_MB, "usage": round(rss_mb, 1)},
        "websocket": {"healthy": True, "connections": len(found.hub.clients)},
        "projections": await _timed(lambda: _projections(found)),
        "uptime": round(time.monotonic() - found.started_at, 1),
    }
    down = any(not checks[name]["healthy"] for name in ("database", "nats", "redis"))
    degraded = not checks["memory"]["healthy"] or not checks["projections"]["healthy"]
    body = {
        "status": "degraded" if down or degraded else "ok",
        "timestamp": datetime.now(UTC).isoformat(),
        "checks": checks,
    }
    return Response(body, status_code=503 if down else 200)
