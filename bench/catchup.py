"""Catch-up speed: a backlog of stock events, then the relay and the projector work it off.

With no worker running, N stock events are appended (stock items opened, then adjusted). Then,
each run: the relay starts from position 0 on fresh streams and is timed until its persisted
position reaches the store's last position; the projector starts with an empty read model and
a fresh durable consumer, and is timed until its tracked position gets there. A run stops at
a time cap and counts what was applied by then. The baseline is reading (and decoding) the same
backlog straight from the event store. Last, `pms projections rebuild main --restart` is run
against the same backlog, stopped at the cap with Ctrl-C (it resumes or restarts), its rate
read from its own progress line. Last of all, in a database of its own, a shop's history
(bench/shop_backlog.py: orders placed, reserved, confirmed and shipped) is rebuilt once.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nats
import psycopg
import uvloop
from eventsourcing.domain import Aggregate
from nats.js.errors import NotFoundError
from psycopg import sql

from application.context import CommandContext
from application.settings import Settings
from application.store import EventStore
from bench import lag
from bench.report import Results
from bench.servers import (
    BenchServers,
    CpuMeter,
    PmsProcess,
    prepare_database,
    reset_streams,
)
from bench.shop_backlog import append_shop_backlog
from domain.catalogue import Product
from domain.inventory import StockItem
from domain.locations import Location
from domain.values import Money
from projections.base import SCHEMA
from projections.registry import projection_groups
from workers.consumer import consumer_name
from workers.streams import CHANGES_STREAM

POLL_SECONDS = 0.02
RELAY_POSITION_SQL = "SELECT position FROM public.pms_relay_position WHERE name = 'relay'"
EVENTS_PER_ITEM = 200
ITEMS_PER_SAVE = 5


@dataclass(frozen=True)
class CatchupPlan:
    """What to run."""

    events: int = 1_000_000
    reps: int = 3
    cap_seconds: float = 15.0
    full_rebuild_cap_seconds: float = 600.0  # one rebuild of the whole backlog
    shop_events: int = 200_000  # a shop's history (orders), rebuilt once
    shop_rebuild_cap_seconds: float = 60.0


def append_backlog(store: EventStore, events: int) -> float:
    """Append about `events` events: a location, products, their stock items, adjustments.

    Products and the location exist so that every projection does its whole work (the ledger
    and low-stock alerts look products up). Returns events/s of the bulk append.
    """
    context = CommandContext.system("bench")
    location = Location.create(code="BENCH", name="Bench", kind="warehouse")
    store.app.save(location, metadata=context.metadata())
    per_item = min(EVENTS_PER_ITEM, max(3, events))
    items = max(1, events // per_item)
    price, cost = Money(1000, "EUR"), Money(500, "EUR")
    started = time.perf_counter()
    written = 0
    for first in range(0, items, ITEMS_PER_SAVE):
        batch: list[Aggregate] = []
        for number in range(first, min(first + ITEMS_PER_SAVE, items)):
            product = Product.create(
                sku=f"BENCH-{number}", name="Bench", price=price, cost=cost, reorder_level=5
            )
            item = StockItem.open(product.id, location.id)
            for _ in range(per_item - 2):
                item.adjust(1, reason="bench", document=None)
            batch += [product, item]
        store.app.save(*batch, metadata=context.metadata())
        written += len(batch) // 2 * per_item
    return written / (time.perf_counter() - started)


def read_backlog(store: EventStore) -> float:
    """Events/s of reading the whole log from the store and decoding it to domain events."""
    started = time.perf_counter()
    count = 0
    to_domain_event = store.app.mapper.to_domain_event
    for notification in store.iter_notifications(0):
        to_domain_event(notification)
        count += 1
    return count / (time.perf_counter() - started)


def _count_between(connection: psycopg.Connection[tuple[object, ...]], low: int, high: int) -> int:
    row = connection.execute(
        "SELECT count(*) FROM public.pms_events WHERE notification_id > %s"
        " AND notification_id <= %s",
        (low, high),
    ).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def time_until(
    database_url: str,
    position_sql: str,
    target: int,
    cap_seconds: float,
    process: PmsProcess,
) -> tuple[float, int]:
    """Events/s from the first movement of `position_sql` until it reaches `target`.

    Start-up (imports, connections) is left out by timing from the first batch seen to the
    last. A backlog done in one batch is timed from the process start instead. Also returns
    how many events the rate is based on.
    """
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as connection:
        first: tuple[float, int] | None = None
        last: tuple[float, int] = (started, 0)
        deadline = time.monotonic() + 60.0  # to start at all
        while True:
            if not process.alive():
                raise process.failure("exited")
            row = connection.execute(position_sql).fetchone()
            now = time.perf_counter()
            position = int(row[0]) if row and row[0] is not None else 0
            if position > 0 and first is None:
                first = (now, position)
                deadline = time.monotonic() + cap_seconds
            if position > last[1]:
                last = (now, position)
            if position >= target or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        if first is None:
            return float("nan"), 0
        if first == last:
            first = (started, 0)
        applied = _count_between(connection, first[1], last[1])
        return applied / (last[0] - first[0]), applied


def reset_read_side(database_url: str) -> None:
    """Empty every read-model table and forget every projection position."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s"
            " AND tablename <> 'projection_positions'",
            (SCHEMA,),
        ).fetchall()
        for (table,) in tables:
            connection.execute(
                sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(table))
            )
        connection.execute(f"DELETE FROM {SCHEMA}.projection_positions")


async def forget_consumers(nats_url: str, events_stream: str, groups: list[str]) -> None:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        for group in groups:
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(events_stream, consumer_name(group))
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(CHANGES_STREAM)  # the projector recreates it
    finally:
        await client.close()


def timed_run(
    results: Results,
    key: str,
    label: str,
    process: PmsProcess,
    position_sql: str,
    target: int,
    cap_seconds: float,
) -> None:
    process.start()
    try:
        rate, applied = time_until(
            process.settings.database_url, position_sql, target, cap_seconds, process
        )
    finally:
        process.stop()
    results.add(key, label, "events/s", rate, events=applied)
    print(f"  {label}: {rate:,.0f} events/s over {applied:,} events", file=sys.stderr, flush=True)


# Progress lines ("2,000/201,101 (1 %)  5,210 events/s"), then on success the result line
# ("rebuilt main: 201,101 events in 19.2 s (10,467 events/s)", switch and clean-up included).
_PROGRESS = re.compile(r"([\d,]+)/[\d,]+ \(\d+ %\)\s+([\d,]+) events/s")
_RESULT = re.compile(r"rebuilt \S+: ([\d,]+) events in [\d.]+ s \(([\d,]+) events/s\)")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def rebuild_rate(
    settings: Settings, group: str, cap_seconds: float, logs: Path
) -> tuple[float, int]:
    """Events/s of `pms projections rebuild GROUP --restart`, interrupted at the cap, and the
    number of events it applied: from its result line, or its last progress line when it was
    interrupted."""
    log = logs / f"rebuild-{settings.port}.log"
    logs.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers", "projections", "rebuild", group, "--restart"],
            env={**os.environ, **settings.as_env()},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Ctrl-C must reach it even when the bench runs in the background (nohup, `&`),
            # where SIGINT is ignored and children would inherit that.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            process.wait(cap_seconds + 10.0)  # + start-up; the rebuild's own rate excludes it
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            process.wait(30.0)
    text = log.read_text(errors="replace")
    found = _RESULT.findall(text) or _PROGRESS.findall(text)
    if process.returncode not in (0, 130, -signal.SIGINT) or not found:
        raise RuntimeError(f"pms projections rebuild failed ({process.returncode}): {text[-800:]}")
    done, rate = found[-1]
    return float(_number(rate)), _number(done)


def run(servers: BenchServers, results: Results, plan: CatchupPlan, logs: Path) -> None:
    """Backlog, then relay and projector runs."""
    database_url = servers.new_database("catchup")
    settings: Settings = servers.settings(database_url)
    prepare_database(settings)
    store = EventStore.connect(settings)
    try:
        rate = append_backlog(store, plan.events)
        results.add("catchup.append", "bulk append of the backlog", "events/s", rate)
        with psycopg.connect(database_url, autocommit=True) as connection:
            row = connection.execute(lag.STORE_POSITION_SQL).fetchone()
            target = int(row[0]) if row and row[0] is not None else 0
            count_row = connection.execute("SELECT count(*) FROM public.pms_events").fetchone()
            total = int(count_row[0]) if count_row else 0
        results.notes.append(f"catch-up backlog: {total:,} events ({rate:,.0f} events/s to append)")
        print(f"  backlog {total:,} events appended at {rate:,.0f} events/s", file=sys.stderr)
        for _ in range(plan.reps):
            results.add(
                "catchup.read", "store read + decode (baseline)", "events/s", read_backlog(store)
            )
        for _ in range(plan.reps):
            uvloop.run(reset_streams(settings.nats_url, settings.stream_name))
            with psycopg.connect(database_url, autocommit=True) as connection:
                connection.execute("DELETE FROM public.pms_relay_position")
            timed_run(
                results,
                "catchup.relay",
                "relay catch-up (store → JetStream)",
                PmsProcess("relay", settings, logs),
                RELAY_POSITION_SQL,
                target,
                plan.cap_seconds,
            )
        groups = [group.name for group in projection_groups()]
        for _ in range(plan.reps):
            uvloop.run(forget_consumers(settings.nats_url, settings.stream_name, groups))
            reset_read_side(database_url)
            timed_run(
                results,
                "catchup.projector",
                "projector catch-up (store pages, then JetStream)",
                PmsProcess("projector", settings, logs),
                lag.PROJECTED_SQL,
                target,
                plan.cap_seconds,
            )
        for _ in range(plan.reps):
            rate, _ = rebuild_rate(settings, groups[0], plan.cap_seconds, logs)
            results.add("catchup.rebuild", "rebuild (pms projections rebuild)", "events/s", rate)
            print(f"  rebuild of {groups[0]}: {rate:,.0f} events/s", file=sys.stderr, flush=True)
        with CpuMeter() as meter:
            rate, applied = rebuild_rate(settings, groups[0], plan.full_rebuild_cap_seconds, logs)
        results.add(
            "catchup.rebuild_full", f"full rebuild of the {total:,} events", "events/s", rate
        )
        _add_cpu_per_event(results, "catchup.rebuild_full", "full rebuild", meter, applied)
        print(f"  full rebuild of {groups[0]}: {rate:,.0f} events/s", file=sys.stderr, flush=True)
    finally:
        store.close()
    if plan.shop_events:
        rebuild_shop(servers, results, plan, logs)


def _add_cpu_per_event(
    results: Results, key: str, label: str, meter: CpuMeter, events: int
) -> None:
    # Start to finish: the rebuild's start-up counts too.
    rate = events / meter.seconds if meter.seconds > 0 else 0.0
    meter.add_per_operation(results, f"{key}.cpu_us", f"{label}, CPU per event", rate, "µs")


def rebuild_shop(servers: BenchServers, results: Results, plan: CatchupPlan, logs: Path) -> None:
    """A rebuild of a shop's history (orders among the stock movements), in its own database."""
    settings = servers.settings(servers.new_database("shop"))
    prepare_database(settings)
    store = EventStore.connect(settings)
    try:
        rate = append_shop_backlog(store, plan.shop_events)
    finally:
        store.close()
    results.add("catchup.append_shop", "bulk append of the shop history", "events/s", rate)
    print(f"  shop history appended at {rate:,.0f} events/s", file=sys.stderr, flush=True)
    group = projection_groups()[0].name
    with CpuMeter() as meter:
        rate, applied = rebuild_rate(settings, group, plan.shop_rebuild_cap_seconds, logs)
    results.add(
        "catchup.rebuild_shop",
        f"rebuild of a shop history ({plan.shop_events:,} events, orders of 3 lines)",
        "events/s",
        rate,
    )
    _add_cpu_per_event(results, "catchup.rebuild_shop", "shop history rebuild", meter, applied)
    print(f"  rebuild of the shop history: {rate:,.0f} events/s", file=sys.stderr, flush=True)
