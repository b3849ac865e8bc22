"""Projection lag under load: from a command's answer to the read model and to a websocket.

Stock adjustments are sent at a fixed rate (open loop). Meanwhile one task polls the event
store's horizon-bounded max position (when readers of the store could see the event: the
baseline floor), one polls `read.projection_positions` (read model visible), and a websocket
client subscribed to `inventory:*` notes when each position's `inventory_update` arrives.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
import websockets

from application.recorder import HORIZON_SQL
from bench.http_client import Sent, open_loop
from bench.report import Results, percentile
from projections.base import SCHEMA

HOST = "127.0.0.1"
POLL_INTERVAL = 0.002
DRAIN_SECONDS = 5.0
STORE_POSITION_SQL = (
    f"SELECT max(notification_id) FROM public.pms_events WHERE notification_id < {HORIZON_SQL}"
)
PROJECTED_SQL = f"SELECT min(position) FROM {SCHEMA}.projection_positions"


@dataclass
class Trace:
    """When positions were first seen, in time order (positions only grow)."""

    times: list[float] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def note(self, at: float, position: int) -> None:
        """Record a newly seen position."""
        if not self.positions or position > self.positions[-1]:
            self.times.append(at)
            self.positions.append(position)

    def first_reaching(self, position: int) -> float | None:
        """When the trace first reached `position`."""
        index = bisect.bisect_left(self.positions, position)
        return self.times[index] if index < len(self.times) else None


async def _poll(database_url: str, query: str, trace: Trace, stop: asyncio.Event) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while not stop.is_set():
            cursor = await conn.execute(query)
            row = await cursor.fetchone()
            at = time.perf_counter()
            if row and row[0] is not None:
                trace.note(at, int(row[0]))
            await asyncio.sleep(POLL_INTERVAL)


async def _listen(
    port: int, token: str, seen: dict[int, float], subscribed: asyncio.Event, stop: asyncio.Event
) -> None:
    url = f"ws://{HOST}:{port}/api/v1/ws?token={token}"
    async with websockets.connect(url, max_queue=None) as socket:
        await socket.send(json.dumps({"type": "subscribe", "topic": "inventory:*"}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(socket.recv(), 0.2)
            except TimeoutError:
                continue
            at = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "subscribed":
                subscribed.set()
            position = message.get("position")
            if message.get("event") == "inventory_update" and isinstance(position, int):
                seen.setdefault(position, at)


@dataclass
class LagRun:
    """One open-loop run and what each observer saw."""

    sent: list[Sent]
    store: Trace
    read_model: Trace
    websocket: dict[int, float]
    seconds: float


async def _run(
    port: int,
    token: str,
    database_url: str,
    requests: Sequence[bytes],
    rate: float,
    seconds: float,
) -> LagRun:
    stop = asyncio.Event()
    store, read_model = Trace(), Trace()
    websocket: dict[int, float] = {}
    subscribed = asyncio.Event()
    observers = [
        asyncio.create_task(_poll(database_url, STORE_POSITION_SQL, store, stop)),
        asyncio.create_task(_poll(database_url, PROJECTED_SQL, read_model, stop)),
        asyncio.create_task(_listen(port, token, websocket, subscribed, stop)),
    ]
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        started = time.perf_counter()
        sent = await open_loop(HOST, port, requests, rate=rate, seconds=seconds, max_in_flight=64)
        elapsed = time.perf_counter() - started
        last = max((s.position for s in sent if s.status < 300), default=0)
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and (  # noqa: ASYNC110 - two observers to wait for
            read_model.first_reaching(last) is None or last not in websocket
        ):
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        for task in observers:
            with contextlib.suppress(Exception):
                await task
    return LagRun(sent, store, read_model, websocket, elapsed)


def run_once(
    port: int,
    token: str,
    database_url: str,
    requests: Sequence[bytes],
    rate: float,
    seconds: float,
) -> LagRun:
    """One open-loop run at `rate` requests/s for `seconds`."""
    import uvloop

    return uvloop.run(_run(port, token, database_url, requests, rate, seconds))


def record(results: Results, run: LagRun, rate: float) -> None:
    """Lag percentiles of one run into results."""
    ok = [s for s in run.sent if 200 <= s.status < 300 and s.position]
    store_lags: list[float] = []
    read_lags: list[float] = []
    ws_lags: list[float] = []
    missing_read = missing_ws = 0
    for s in ok:
        at = run.store.first_reaching(s.position)
        if at is not None:
            store_lags.append(max(0.0, at - s.answered) * 1000)
        at = run.read_model.first_reaching(s.position)
        if at is None:
            missing_read += 1
        else:
            read_lags.append(max(0.0, at - s.answered) * 1000)
        ws_at = run.websocket.get(s.position)
        if ws_at is None:
            missing_ws += 1
        else:
            ws_lags.append(max(0.0, ws_at - s.answered) * 1000)
    latencies = [(s.answered - s.scheduled) * 1000 for s in ok]
    achieved = len(ok) / run.seconds if run.seconds else 0.0
    details = {
        "commands": len(ok),
        "failed": len(run.sent) - len(ok),
        "missing_read_model": missing_read,
        "missing_websocket": missing_ws,
        "offered_rate": round(rate, 1),
    }
    results.add("lag.rate", "adjustments sent at 50 % load", "req/s", achieved, **details)
    for name, values in (
        ("store", store_lags),
        ("read_model", read_lags),
        ("websocket", ws_lags),
        ("command", latencies),
    ):
        results.add(f"lag.{name}.p50", f"{name} lag p50", "ms", percentile(values, 0.5))
        results.add(f"lag.{name}.p99", f"{name} lag p99", "ms", percentile(values, 0.99))
    print(
        f"  lag at {achieved:,.0f} req/s: store p50/p99 {percentile(store_lags, 0.5):.1f}/"
        f"{percentile(store_lags, 0.99):.1f} ms, read model {percentile(read_lags, 0.5):.1f}/"
        f"{percentile(read_lags, 0.99):.1f} ms, websocket {percentile(ws_lags, 0.5):.1f}/"
        f"{percentile(ws_lags, 0.99):.1f} ms, command {percentile(latencies, 0.5):.1f}/"
        f"{percentile(latencies, 0.99):.1f} ms"
        + (f"; missing read {missing_read} ws {missing_ws}" if missing_read or missing_ws else ""),
        file=sys.stderr,
        flush=True,
    )
