"""A/B runs on one set of servers, variants taking turns, for evidence on a change.

    python -m bench.ab appends [--writers 16] [--events 1] NAME=module:RecorderClass ...
    python -m bench.ab http [--command place_order] [--procs 1] NAME=TREE[,VAR=VALUE...] ...
    python -m bench.ab projector [--events 30000] NAME=TREE[,VAR=VALUE...] ...

`appends` compares recorder classes importable here (the psycopg loop and the stock recorder
always run beside them) by throughput and by interleaved 1-writer latency. `http` and
`projector` run the API or the projector from source TREEs (a checkout of another commit, or
`.`) with extra environment variables, e.g. `cache=.,AGGREGATE_CACHE_MAXSIZE=10000`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg
import uvloop

from application.store import EventStore, application_env
from bench import appends, catchup, http_load, lag
from bench.http_load import HttpPlan
from bench.report import Results, percentile
from bench.servers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BenchServers,
    PmsProcess,
    prepare_database,
    reset_streams,
)
from projections.registry import projection_groups

STOCK_TOPIC = "eventsourcing.postgres:PostgresApplicationRecorder"


class TopicTarget(appends.RecorderTarget):
    """A recorder given by topic, on its own table."""

    def __init__(self, name: str, settings_url: str, env: dict[str, str], topic: str) -> None:
        self.name = name
        full = {**env, "CREATE_TABLE": "y", "APPLICATION_RECORDER_TOPIC": topic}
        self.app = appends.BenchApplication(f"ab{name}", full)
        self.database_url = settings_url


def _trees(specs: Sequence[str]) -> list[tuple[str, Path, dict[str, str]]]:
    variants = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        tree, *pairs = rest.split(",")
        env = dict(pair.split("=", 1) for pair in pairs)
        variants.append((name, Path(tree).resolve(), env))
    return variants


def _summary(results: Results, keys: dict[str, str], unit: str) -> None:
    for name, key in keys.items():
        figure = results.figures[key]
        runs = ", ".join(f"{v:,.0f}" for v in figure.runs)
        print(f"{name:>14}: median {figure.median:,.0f} {unit}  (runs {runs})")


def ab_appends(servers: BenchServers, args: argparse.Namespace) -> None:
    """Throughput at `writers`, then interleaved latency, per recorder."""
    settings = servers.settings(servers.new_database("ab"))
    env = {**application_env(settings), "POSTGRES_POOL_SIZE": str(args.writers)}
    targets: list[appends.PsycopgTarget | TopicTarget] = [appends.PsycopgTarget(settings)]
    specs = [("stock", STOCK_TOPIC), *(tuple(s.split("=", 1)) for s in args.variants)]
    targets += [TopicTarget(n, settings.database_url, env, t) for n, t in specs]
    results = Results()
    for _ in range(args.reps):
        for target in targets:
            target.reset()
            run = appends.measure(
                target, writers=args.writers, events=args.events, warmup=0.3, window=args.window
            )
            results.add(target.name, target.name, "saves/s", run.saves_per_second)
            results.add(f"{target.name}.cpu", target.name, "µs", run.cpu_us_per_save)
    print(f"saves/s, {args.events} event(s)/save, {args.writers} writers:")
    _summary(results, {t.name: t.name for t in targets}, "saves/s")
    latencies = appends.measure_latency(targets, events=args.events, rounds=3000)
    print("latency, 1 writer, taking turns (µs):")
    for name, values in latencies.items():
        cpu = results.median(f"{name}.cpu")
        print(
            f"{name:>14}: p50 {percentile(values, 0.5):,.0f}  p90 {percentile(values, 0.9):,.0f}"
            f"  (client CPU {cpu:,.0f} µs/save at {args.writers} writers)"
        )
    for target in targets:
        target.reset()
        target.close()


def ab_http(servers: BenchServers, args: argparse.Namespace) -> None:
    """Closed-loop load on the API of each tree in turn, each on its own products."""
    variants = _trees(args.variants)
    database_url = servers.new_database("ab")
    prepare_database(servers.settings(database_url))
    first = PmsProcess("api", servers.settings(database_url), Path(servers.workdir) / "logs")
    first.start()
    first.wait_healthy()
    shop = http_load.create_shop(
        first.settings.port, ADMIN_EMAIL, ADMIN_PASSWORD, args.products * len(variants)
    )
    first.stop()
    parts = http_load.slices(shop.products, len(variants))
    plan = HttpPlan(concurrency=args.concurrency, warmup=1.0, window=args.window, reps=1)
    results = Results()
    for _ in range(args.reps):
        for (name, tree, env), products in zip(variants, parts, strict=True):
            settings = servers.settings(database_url, api_workers=args.procs)
            api = PmsProcess("api", settings, Path(servers.workdir) / "logs", env, cwd=tree)
            api.start()
            try:
                api.wait_healthy()
                shop.port = settings.port
                http_load.measure(
                    results,
                    shop,
                    products,
                    command=args.command,
                    variant=name,
                    api_processes=args.procs,
                    plan=plan,
                )
            finally:
                api.stop()
    keys = {n: http_load.key(args.command, n, args.procs) + ".rps" for n, _, _ in variants}
    _summary(results, keys, "req/s")


def ab_projector(servers: BenchServers, args: argparse.Namespace) -> None:
    """One backlog relayed once; then each tree's projector catches up in turn."""
    variants = _trees(args.variants)
    logs = Path(servers.workdir) / "logs"
    database_url = servers.new_database("ab")
    settings = servers.settings(database_url)
    prepare_database(settings)
    store = EventStore.connect(settings)
    try:
        catchup.append_backlog(store, args.events)
    finally:
        store.close()
    uvloop.run(reset_streams(settings.nats_url, settings.stream_name))
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(lag.STORE_POSITION_SQL).fetchone()
    target = int(row[0]) if row and row[0] is not None else 0
    relay = PmsProcess("relay", settings, logs).start()
    try:
        catchup.time_until(database_url, catchup.RELAY_POSITION_SQL, target, 120.0, relay)
    finally:
        relay.stop()
    groups = [group.name for group in projection_groups()]
    results = Results()
    for _ in range(args.reps):
        for name, tree, env in variants:
            uvloop.run(catchup.forget_consumers(settings.nats_url, settings.stream_name, groups))
            catchup.reset_read_side(database_url)
            projector = PmsProcess("projector", settings, logs, env, cwd=tree)
            catchup.timed_run(results, name, name, projector, lag.PROJECTED_SQL, target, args.cap)
    _summary(results, {n: n for n, _, _ in variants}, "events/s")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, start servers, run the chosen comparison."""
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("kind", choices=["appends", "http", "projector"])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--events", type=int, default=0, help="events/save, or backlog size")
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--command", default="place_order", choices=sorted(http_load.COMMANDS))
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--cap", type=float, default=20.0)
    args = parser.parse_args(argv)
    if not args.events:
        args.events = 30_000 if args.kind == "projector" else 1
    runner = {"appends": ab_appends, "http": ab_http, "projector": ab_projector}[args.kind]
    with (
        tempfile.TemporaryDirectory(prefix="pms-ab-") as scratch,
        BenchServers(Path(scratch)) as servers,
    ):
        runner(servers, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
