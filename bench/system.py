"""The system phase: HTTP commands per configuration, projection lag, and memory under load.

Configurations, in this order (API processes are restarted between them):

* xid + workers, 1 and 2 API processes: the system as deployed (relay and projector running);
  memory is sampled here, and the lag runs at 2 API processes;
* xid and stock without workers, both at 1 and then at 2 API processes, taking turns window
  by window: like for like, since the relay and projectors need the xid recorder's metadata
  and cannot run on the stock table. At 2 API processes, xid then takes place-order requests
  in an open loop at `PLACE_ORDER_TARGET` times the stock figure, for the latency the target
  asks at that rate.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import uvloop

from bench import http_load, lag, reports
from bench.http_load import HttpPlan, Shop
from bench.report import Results
from bench.servers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BenchServers,
    CpuMeter,
    MemorySampler,
    PmsProcess,
    prepare_database,
    reset_streams,
    rss_mb,
)

COMMANDS = ("place_order", "adjust_stock")
# The stock recorder fails one assert in EventStore.next_number (it checks for our recorder
# class); -O drops asserts, so the stock API can place orders. It can only help the baseline.
STOCK_API_ENV = {"PYTHONOPTIMIZE": "1"}
PLACE_ORDER_TARGET = 2.5  # issue 8: place order ≥ 2.5× stock, p99 ≤ 50 ms at that rate


@dataclass(frozen=True)
class LagPlan:
    """Open-loop runs at a fraction of the measured maximum adjustment rate."""

    load_fraction: float = 0.5
    seconds: float = 5.0
    reps: int = 3


def wait_projected(database_url: str, timeout: float = 120.0) -> None:
    """Block until the projectors have applied everything readers of the store can see."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as connection:
        while time.monotonic() < deadline:
            store = connection.execute(lag.STORE_POSITION_SQL).fetchone()
            projected = connection.execute(lag.PROJECTED_SQL).fetchone()
            wanted = int(store[0] or 0) if store else 0
            if projected and projected[0] is not None and int(projected[0]) >= wanted:
                return
            time.sleep(0.1)
    raise RuntimeError("the projector did not catch up in time")


def _start_api(base: PmsProcess) -> PmsProcess:
    base.start()
    base.wait_healthy()
    return base


def _api(
    servers: BenchServers, database_url: str, logs: Path, store: str, workers: int
) -> PmsProcess:
    settings = servers.settings(database_url, event_store=store, api_workers=workers)
    env = STOCK_API_ENV if store == "stock" else {}
    return _start_api(PmsProcess("api", settings, logs, extra_env=env))


Contender = tuple[Shop, list[str], str]  # fixtures, the products to order, variant name


def _measure(
    results: Results,
    contenders: list[Contender],
    api_processes: int,
    plan: HttpPlan,
    commands: tuple[str, ...] = COMMANDS,
) -> None:
    """Each command on each contender; with several, one measured window at a time, taking
    turns, so that what drifts on a shared machine (autovacuum and checkpoints of earlier
    phases, a database's growth) falls on every contender alike, not on whichever runs last."""
    rounds, per_round = (1, plan) if len(contenders) == 1 else (plan.reps, replace(plan, reps=1))
    with CpuMeter() as meter:
        for command in commands:
            for _ in range(rounds):
                for shop, products, variant in contenders:
                    http_load.measure(
                        results,
                        shop,
                        products,
                        command=command,
                        variant=variant,
                        api_processes=api_processes,
                        plan=per_round,
                    )
    variants = " and ".join(variant for _, _, variant in contenders)
    results.meta.setdefault("cpu", {})[f"http {variants} {api_processes} API"] = meter.usage


def _record_memory(results: Results, sampler: MemorySampler, idle: dict[str, float]) -> None:
    peaks = sampler.peak_by_role()
    api = max((v for role, v in peaks.items() if role.startswith("api")), default=float("nan"))
    results.add("memory.api.peak", "API process peak RSS under load", "MB", api, roles=peaks)
    results.add("memory.worker.peak", "worker peak RSS under load", "MB", peaks.get("worker", 0))
    results.add("memory.api.idle", "API process RSS after start", "MB", idle["api"])
    results.add("memory.worker.idle", "worker RSS after start", "MB", idle["worker"])


def run(
    servers: BenchServers,
    results: Results,
    plan: HttpPlan,
    logs: Path,
    *,
    configs: bool = True,
    lag_plan: LagPlan | None = None,
    reports_plan: reports.ReportsPlan | None = None,
) -> None:
    """Every configuration (when `configs`), the lag runs and the report queries."""
    database_url = servers.new_database("http")
    base = servers.settings(database_url)
    prepare_database(base)
    uvloop.run(reset_streams(servers.urls.nats_url, base.stream_name))
    worker = PmsProcess("worker", base, logs).start()
    api = None
    try:
        api = _api(servers, database_url, logs, "xid", 1)
        shop = http_load.create_shop(
            api.settings.port, ADMIN_EMAIL, ADMIN_PASSWORD, 4 * plan.products_per_config
        )
        parts = http_load.slices(shop.products, 4)
        wait_projected(database_url)
        idle = {"api": rss_mb(api.pid), "worker": rss_mb(worker.pid)}
        sampler = MemorySampler({"api": api, "worker": worker})
        with sampler:
            if configs:
                print("HTTP xid + workers, 1 API process", file=sys.stderr, flush=True)
                _measure(results, [(shop, parts[0], "xid+workers")], 1, plan)
                wait_projected(database_url)
            api.stop()
            api = _api(servers, database_url, logs, "xid", 2)
            sampler.processes["api"] = api
            shop.port = api.settings.port
            print("HTTP xid + workers, 2 API processes", file=sys.stderr, flush=True)
            if configs or lag_plan is not None:
                commands = COMMANDS if configs else ("adjust_stock",)
                _measure(results, [(shop, parts[1], "xid+workers")], 2, plan, commands)
            if lag_plan is not None:
                wait_projected(database_url)
                maximum = results.median(http_load.key("adjust_stock", "xid+workers", 2) + ".rps")
                rate = maximum * lag_plan.load_fraction
                print(f"lag at {rate:,.0f} req/s (50 % of {maximum:,.0f})", file=sys.stderr)
                requests = http_load.adjust_requests(shop, parts[1], shop.token, 7)
                with CpuMeter() as meter:
                    for _ in range(lag_plan.reps):
                        outcome = lag.run_once(
                            shop.port, shop.token, database_url, requests, rate, lag_plan.seconds
                        )
                        lag.record(results, outcome, rate)
                        wait_projected(database_url)
                results.meta.setdefault("cpu", {})["lag (50 % load)"] = meter.usage
            if reports_plan is not None:
                wait_projected(database_url)
                with CpuMeter() as meter:
                    reports.run(
                        shop.port, shop.token, servers.urls.redis_url, reports_plan, results
                    )
                results.meta.setdefault("cpu", {})["report queries"] = meter.usage
        _record_memory(results, sampler, idle)
        worker.stop()
        if not configs:
            return
        api.stop()
        _like_for_like(servers, results, plan, logs, database_url, shop, parts[2:])
    finally:
        if api is not None:
            api.stop()
        worker.stop()


def _like_for_like(
    servers: BenchServers,
    results: Results,
    plan: HttpPlan,
    logs: Path,
    database_url: str,
    shop: Shop,
    parts: list[list[str]],
) -> None:
    """xid and stock without workers, 1 then 2 API processes each, taking turns; then place
    order on xid at 2 API processes in an open loop at `PLACE_ORDER_TARGET` × stock."""
    stock_url = servers.new_database("stock")
    prepare_database(servers.settings(stock_url, event_store="stock"))
    running: list[PmsProcess] = []
    try:
        stock_api = _api(servers, stock_url, logs, "stock", 1)
        running.append(stock_api)
        stock_shop = http_load.create_shop(
            stock_api.settings.port, ADMIN_EMAIL, ADMIN_PASSWORD, 2 * plan.products_per_config
        )
        stock_parts = http_load.slices(stock_shop.products, 2)
        for index, processes in enumerate((1, 2)):
            if processes > 1:
                stock_api.stop()
                stock_api = _api(servers, stock_url, logs, "stock", processes)
                running.append(stock_api)
            stock_shop.port = stock_api.settings.port
            api = _api(servers, database_url, logs, "xid", processes)
            running.append(api)
            shop.port = api.settings.port
            print(
                f"HTTP xid and stock without workers, {processes} API processes, taking turns",
                file=sys.stderr,
                flush=True,
            )
            contenders = [(stock_shop, stock_parts[index], "stock"), (shop, parts[index], "xid")]
            _measure(results, contenders, processes, plan)
            if processes > 1:
                stock_api.stop()
                stock = results.median(http_load.key("place_order", "stock", 2) + ".rps")
                rate = stock * PLACE_ORDER_TARGET
                print(f"place order on xid at {rate:,.0f} req/s", file=sys.stderr, flush=True)
                http_load.measure_at_rate(
                    results,
                    shop,
                    parts[index],
                    command="place_order",
                    variant="xid",
                    api_processes=processes,
                    rate=rate,
                    plan=plan,
                )
            api.stop()
    finally:
        for process in running:
            process.stop()
