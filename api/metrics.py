"""GET /metrics: Prometheus text of request latency, commands, appends, projection lag, sockets.

Counters live in each API process (with several uvicorn workers, each answers for itself);
projection lag is read from the database at scrape time, so every process tells the same.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from litestar import Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from projections.positions import group_status
from projections.registry import projection_groups

T = TypeVar("T")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


class Histogram:
    """Cumulative buckets, sum and count per label set."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.series: dict[Labels, list[float]] = {}  # bucket counts..., sum, count

    def observe(self, labels: Labels, seconds: float) -> None:
        """Count one observation."""
        row = self.series.setdefault(labels, [0.0] * (len(self.buckets) + 3))
        row[bisect.bisect_left(self.buckets, seconds)] += 1  # the first bucket it fits in
        row[-2] += seconds
        row[-1] += 1

    def lines(self, name: str) -> Iterable[str]:
        """Prometheus lines of every series."""
        for labels, row in sorted(self.series.items()):
            running = 0.0
            for bound, count in zip((*self.buckets, float("inf")), row[:-2], strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                yield f"{name}_bucket{_labels((*labels, ('le', le)))} {running:.0f}"
            yield f"{name}_sum{_labels(labels)} {row[-2]:.6f}"
            yield f"{name}_count{_labels(labels)} {row[-1]:.0f}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels) + "}"


class Metrics:
    """One API process's counters (thread-safe: commands run in worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = Histogram()
        self.appends = Histogram()
        self.commands: dict[Labels, int] = defaultdict(int)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """A finished HTTP request; writes also count as commands."""
        with self._lock:
            self.requests.observe((("method", method), ("route", route)), seconds)
            if method in COMMAND_METHODS:
                key = (("method", method), ("route", route), ("status", str(status)))
                self.commands[key] += 1

    def observe_append(self, seconds: float) -> None:
        """One atomic save to the event store."""
        with self._lock:
            self.appends.observe((), seconds)

    def timed_append(self, insert: Callable[..., T]) -> Callable[..., T]:
        """`insert` (the recorder's insert_events), timed into the append histogram."""

        def timed(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return insert(*args, **kwargs)
            finally:
                self.observe_append(time.perf_counter() - started)

        return timed

    def lines(self) -> list[str]:
        """The process's own metrics, as Prometheus lines."""
        with self._lock:
            lines = [
                "# HELP pms_http_request_duration_seconds HTTP request latency by route.",
                "# TYPE pms_http_request_duration_seconds histogram",
                *self.requests.lines("pms_http_request_duration_seconds"),
                "# HELP pms_commands_total Commands (writes) by route, method and status.",
                "# TYPE pms_commands_total counter",
                *(f"pms_commands_total{_labels(k)} {v}" for k, v in sorted(self.commands.items())),
                "# HELP pms_event_store_append_seconds Latency of one atomic save to the store.",
                "# TYPE pms_event_store_append_seconds histogram",
                *self.appends.lines("pms_event_store_append_seconds"),
            ]
        return lines


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Time every HTTP request by route template (e.g. /api/v1/orders/{order_id:uuid})."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            route = str(scope.get("path_template") or "unmatched")
            found = getattr(scope["app"].state, "services", None)
            if found is not None:
                found.metrics.observe_request(
                    str(scope.get("method", "")), route, status[0], time.perf_counter() - started
                )

    return middleware


@get("/metrics", opt={"exclude_from_auth": True}, tags=["operations"], include_in_schema=True)
async def metrics(state: State) -> Response[str]:
    """Prometheus text: request latency, commands, appends, projection lag, websockets."""
    found = state.services  # (api.dependencies imports api.services, which imports this)
    async with found.pool.connection(timeout=2) as connection:
        statuses = [await group_status(connection, group) for group in projection_groups()]
    lines = found.metrics.lines()
    gauges = {
        "pms_projection_position": ("Position the group's read models applied.", "position"),
        "pms_projection_lag_events": ("Stored events the group has not applied.", "lag_events"),
        "pms_projection_lag_seconds": ("Age of the oldest event not applied.", "lag_seconds"),
    }
    for name, (help_text, attribute) in gauges.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [
            f"{name}{_labels((('group', s.name),))} {getattr(s, attribute)}" for s in statuses
        ]
    lines += [
        "# HELP pms_projection_failed 1 when the group stopped on an event.",
        "# TYPE pms_projection_failed gauge",
    ]
    lines += [
        f"pms_projection_failed{_labels((('group', s.name),))} {int(s.state == 'failed')}"
        for s in statuses
    ]
    lines += [
        "# HELP pms_websocket_connections Open websocket connections.",
        "# TYPE pms_websocket_connections gauge",
        f"pms_websocket_connections {len(found.hub.clients)}",
    ]
    return Response("\n".join(lines) + "\n", media_type=CONTENT_TYPE)
