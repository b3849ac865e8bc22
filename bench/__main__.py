"""`python -m bench [--quick] [--only appends,http,lag,reports,catchup,loads]`: measure, report.

Starts its own servers (embedded, as `make test` does, unless PMS_BENCH_DATABASE_URL,
PMS_BENCH_NATS_URL or PMS_BENCH_REDIS_URL are set), runs every measurement several times beside
a baseline measured in the same run, prints a table with PASS/FAIL lines for the targets of
issue 8 and writes every run to a JSON file (bench-results.json by default).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import appends, catchup, loads, report, reports, system
from bench.http_load import HttpPlan
from bench.report import Results
from bench.servers import BenchServers, CpuMeter, prepare_database, workdir

PHASES = ("appends", "http", "lag", "reports", "catchup", "loads")
IDLE_CHECK_SECONDS = 2.0
BUSY_MACHINE_PERCENT = 20


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _plans(
    args: argparse.Namespace,
) -> tuple[
    appends.AppendPlan,
    HttpPlan,
    system.LagPlan,
    reports.ReportsPlan,
    catchup.CatchupPlan,
    loads.LoadsPlan,
]:
    if args.quick:
        plans = (
            appends.AppendPlan(warmup=0.15, window=0.4, latency_rounds=300),
            HttpPlan(warmup=0.3, window=0.8, products_per_config=100),
            system.LagPlan(seconds=1.5),
            reports.ReportsPlan(uncached=5, cached=20),
            catchup.CatchupPlan(
                events=20_000,
                cap_seconds=4.0,
                full_rebuild_cap_seconds=20.0,
                shop_events=5_000,
                shop_rebuild_cap_seconds=10.0,
            ),
            loads.LoadsPlan(histories=(1_000, 5_000), loads=5),
        )
    else:
        plans = (
            appends.AppendPlan(),
            HttpPlan(),
            system.LagPlan(),
            reports.ReportsPlan(),
            catchup.CatchupPlan(),
            loads.LoadsPlan(),
        )
    append_plan, http_plan, lag_plan, reports_plan, catchup_plan, loads_plan = plans
    scale = args.scale
    reps = args.reps
    append_plan = replace(
        append_plan,
        warmup=append_plan.warmup * scale,
        window=append_plan.window * scale,
        reps=reps or append_plan.reps,
    )
    http_plan = replace(
        http_plan,
        warmup=http_plan.warmup * scale,
        window=http_plan.window * scale,
        reps=reps or http_plan.reps,
        concurrency=args.concurrency or http_plan.concurrency,
        products_per_config=args.products or http_plan.products_per_config,
    )
    lag_plan = replace(lag_plan, seconds=lag_plan.seconds * scale, reps=reps or lag_plan.reps)
    catchup_plan = replace(
        catchup_plan,
        events=args.catchup_events or catchup_plan.events,
        cap_seconds=catchup_plan.cap_seconds * scale,
        reps=reps or catchup_plan.reps,
    )
    reports_plan = replace(reports_plan, reps=reps or reports_plan.reps)
    loads_plan = replace(loads_plan, reps=reps or loads_plan.reps)
    return append_plan, http_plan, lag_plan, reports_plan, catchup_plan, loads_plan


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 1-2 minute smoke run")
    parser.add_argument(
        "--only", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}"
    )
    parser.add_argument("--output", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--reps", type=int, default=0, help="runs per measurement (≥ 3)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every duration")
    parser.add_argument("--concurrency", type=int, default=0, help="HTTP requests in flight")
    parser.add_argument("--products", type=int, default=0, help="products per HTTP config")
    parser.add_argument("--catchup-events", type=int, default=0, help="backlog size")
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected phases; print the table; write the JSON."""
    args = _parse(argv)
    append_plan, http_plan, lag_plan, reports_plan, catchup_plan, loads_plan = _plans(args)
    results = Results()
    results.meta = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "phases": args.phases,
        "quick": args.quick,
        "plans": {
            "appends": asdict(append_plan),
            "http": asdict(http_plan),
            "lag": asdict(lag_plan),
            "reports": asdict(reports_plan),
            "catchup": asdict(catchup_plan),
            "loads": asdict(loads_plan),
        },
        "cpu": {},
    }
    began = time.monotonic()
    with workdir() as scratch, BenchServers(Path(scratch)) as servers:
        logs = Path(scratch) / "logs"
        results.meta["servers"] = servers.describe()
        print(f"servers: {results.meta['servers']}", file=sys.stderr, flush=True)
        with CpuMeter() as meter:
            time.sleep(IDLE_CHECK_SECONDS)
        results.meta["cpu"]["idle check (nothing of ours running)"] = meter.usage
        foreign = meter.usage.get("foreign", 0)
        if foreign > BUSY_MACHINE_PERCENT:
            results.notes.append(
                f"the machine was busy before the run: other programs used {foreign} % of one "
                "core; figures are lower and noisier than on an idle machine (see the CPU table)"
            )
            print(f"warning: {results.notes[-1]}", file=sys.stderr, flush=True)
        if "appends" in args.phases:
            print("appends", file=sys.stderr, flush=True)
            settings = servers.settings(servers.new_database("appends"))
            with CpuMeter() as meter:
                appends.run(settings, append_plan, results)
            results.meta["cpu"]["appends"] = meter.usage
        if {"http", "lag", "reports"} & set(args.phases):
            system.run(
                servers,
                results,
                http_plan,
                logs,
                configs="http" in args.phases,
                lag_plan=lag_plan if "lag" in args.phases else None,
                reports_plan=reports_plan if "reports" in args.phases else None,
            )
        if "catchup" in args.phases:
            print("catch-up", file=sys.stderr, flush=True)
            with CpuMeter() as meter:
                catchup.run(servers, results, catchup_plan, logs)
            results.meta["cpu"]["catch-up"] = meter.usage
        if "loads" in args.phases:
            print("loads", file=sys.stderr, flush=True)
            settings = servers.settings(servers.new_database("loads"))
            prepare_database(settings)
            loads.run(settings, loads_plan, results)
    results.meta["seconds"] = round(time.monotonic() - began)
    evaluate(results, append_plan)
    print(render(results, append_plan))
    results.write_json(args.output)
    print(f"\n(every run in {args.output})")
    return 0


def _check(value: float, good: bool) -> bool | None:
    return None if value != value else good


def _cores(results: Results) -> int:
    return int(results.meta.get("cpus") or 1)


def _cpu_cap(results: Results, key: str, units_per_second: float) -> tuple[float, float]:
    """CPU per operation (the figure `key`, in 1/`units_per_second` s) and how many operations
    per second the machine's cores could do at that cost, if they did nothing else."""
    cost = results.median(key)
    return cost, report.ratio(_cores(results) * units_per_second, cost)


def _rebuild_cap(results: Results, key: str) -> str:
    cost, ceiling = _cpu_cap(results, f"{key}.cpu_us", 1e6)
    if cost != cost:  # not measured in this run
        return ""
    return (
        f"; at {cost:.0f} µs of CPU per event, {_cores(results)} cores cap it at"
        f" {ceiling:,.0f} events/s"
    )


def evaluate(results: Results, append_plan: appends.AppendPlan) -> None:
    """PASS/FAIL per target of issue 8 (None when not measured in this run)."""
    most = max(append_plan.writers)
    xid = results.median(appends.key("xid", 1, most))
    stock = results.median(appends.key("stock", 1, most))
    plain = results.median(appends.key("psycopg", 1, most))
    to_plain, to_stock = report.ratio(xid, plain), report.ratio(xid, stock)
    results.target(
        f"appends, 1 event/save, {most} writers: xid ≥ 50 % of the psycopg loop",
        _check(to_plain, to_plain >= 0.5),
        f"{to_plain:.0%} ({xid:,.0f} vs {plain:,.0f} saves/s)",
    )
    results.target(
        f"appends, 1 event/save, {most} writers: xid ≥ 4× stock",
        _check(to_stock, to_stock >= 4),
        f"{to_stock:.2f}× ({xid:,.0f} vs {stock:,.0f} saves/s)",
    )
    from bench.http_load import key as http_key

    ours = results.median(http_key("place_order", "xid", 2) + ".rps")
    theirs = results.median(http_key("place_order", "stock", 2) + ".rps")
    deployed = results.median(http_key("place_order", "xid+workers", 2) + ".rps")
    p99 = results.median(http_key("place_order", "xid", 2) + ".p99")
    at_rate = http_key("place_order", "xid", 2) + ".at_rate"
    paced_p99 = results.median(at_rate + ".p99")
    offered = results.median(at_rate + ".rate")
    gain = report.ratio(ours, theirs)
    cpu_ms, ceiling = _cpu_cap(results, http_key("place_order", "xid", 2) + ".cpu_ms", 1e3)
    cores = _cores(results)
    results.target(
        "place order over HTTP, 2 API processes: xid ≥ 2.5× stock",
        _check(gain, gain >= 2.5),
        f"{gain:.2f}× ({ours:,.0f} vs {theirs:,.0f} req/s, neither with workers; "
        f"{deployed:,.0f} req/s with relay and projector running); at {cpu_ms:.1f} ms of CPU "
        f"per order, {cores} cores cap xid at {ceiling:,.0f} req/s = "
        f"{report.ratio(ceiling, theirs):.2f}× stock",
    )
    results.target(
        "place order over HTTP, 2 API processes: p99 ≤ 50 ms at 2.5× the stock rate",
        _check(paced_p99, paced_p99 <= 50),
        f"p99 {paced_p99:.1f} ms with requests arriving at {offered:,.0f}/s (open loop); "
        f"closed loop at saturation: p99 {p99:.1f} ms at {ours:,.0f} req/s, "
        f"{results.meta['plans']['http']['concurrency']} in flight",
    )
    read_p99 = results.median("lag.read_model.p99")
    ws_p99 = results.median("lag.websocket.p99")
    results.target(
        "projection lag at 50 % load: read model p99 ≤ 100 ms",
        _check(read_p99, read_p99 <= 100),
        f"p99 {read_p99:.1f} ms",
    )
    results.target(
        "projection lag at 50 % load: websocket p99 ≤ 150 ms",
        _check(ws_p99, ws_p99 <= 150),
        f"p99 {ws_p99:.1f} ms",
    )
    full = "catchup.rebuild_full" in results.figures
    rebuild = results.median("catchup.rebuild_full" if full else "catchup.rebuild")
    results.target(
        "rebuild ≥ 30k events/s, stock movements",
        _check(rebuild, rebuild >= 30_000),
        f"{rebuild:,.0f} events/s ({'whole backlog' if full else 'capped runs'}),"
        f" projector catch-up {results.median('catchup.projector'):,.0f} events/s"
        + _rebuild_cap(results, "catchup.rebuild_full"),
    )
    shop = results.median("catchup.rebuild_shop")
    results.target(
        "rebuild ≥ 30k events/s, a shop's history (orders, sales)",
        _check(shop, shop >= 30_000),
        f"{shop:,.0f} events/s" + _rebuild_cap(results, "catchup.rebuild_shop"),
    )
    api_mb = results.median("memory.api.peak")
    worker_mb = results.median("memory.worker.peak")
    results.target(
        "memory under load: every API process ≤ 150 MB",
        _check(api_mb, api_mb <= 150),
        f"peak {api_mb:.0f} MB",
    )
    results.target(
        "memory under load: worker ≤ 200 MB",
        _check(worker_mb, worker_mb <= 200),
        f"peak {worker_mb:.0f} MB",
    )


def render(results: Results, append_plan: appends.AppendPlan) -> str:
    """The short table: every figure beside its baseline, then the targets."""
    from bench.http_load import key as http_key

    meta = results.meta
    out = [
        f"# PMS bench — {meta['started']}, commit {meta['commit']}"
        + (" (+ uncommitted changes)" if meta["dirty"] else ""),
        f"{meta['cpus']} CPUs, Python {meta['python']}, PostgreSQL "
        f"{meta.get('servers', {}).get('postgres_version', '?')}, {meta['seconds']} s; "
        "medians of the runs ±(max−min)/median",
        "",
    ]
    rows = appends.summary_rows(results, append_plan)
    if rows:
        out += ["## Event store appends (saves/s)", report.table(appends.APPEND_HEADERS, rows), ""]
    if "appends.xid.latency" in results.figures:
        latency = {t: results.median(f"appends.{t}.latency") for t in ("psycopg", "stock", "xid")}
        out += [
            "Save latency, 1 writer, 1 event, the three taking turns save by save (µs, p50): "
            + ", ".join(f"{t} {v:,.0f}" for t, v in latency.items())
            + f" (xid takes {report.ratio(latency['xid'], latency['psycopg']):.2f}×, stock "
            f"{report.ratio(latency['stock'], latency['psycopg']):.2f}× the psycopg time)",
            "",
        ]
    http_rows = []
    for command in ("place_order", "adjust_stock"):
        for variant in ("xid+workers", "xid", "stock"):
            for processes in (1, 2):
                prefix = http_key(command, variant, processes)
                figure = results.figures.get(prefix + ".rps")
                if figure is None:
                    continue
                baseline = results.median(http_key(command, "stock", processes) + ".rps")
                errors = sum(sum(d.get("errors", {}).values()) for d in figure.details)
                http_rows.append(
                    [
                        command,
                        variant,
                        str(processes),
                        figure.text(),
                        f"{results.median(prefix + '.p50'):.1f}",
                        f"{results.median(prefix + '.p99'):.1f}",
                        report.ratio_text(report.ratio(figure.median, baseline)),
                        f"{results.median(prefix + '.cpu_ms'):.1f}",
                        str(errors),
                    ]
                )
    if http_rows:
        concurrency = meta["plans"]["http"]["concurrency"]
        out += [
            f"## HTTP commands, closed loop, {concurrency} in flight",
            report.table(
                [
                    "command",
                    "store",
                    "API procs",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "÷ stock",
                    "CPU ms/req",
                    "non-2xx",
                ],
                http_rows,
            ),
            "",
        ]
    at_rate = http_key("place_order", "xid", 2) + ".at_rate"
    if at_rate + ".rate" in results.figures:
        errors = sum(
            sum(d.get("errors", {}).values()) for d in results.figures[at_rate + ".rate"].details
        )
        out += [
            f"Place order, xid, 2 API processes, open loop at "
            f"{results.median(at_rate + '.rate'):,.0f} requests/s (2.5× stock): "
            f"p50 {results.median(at_rate + '.p50'):.1f} ms, "
            f"p99 {results.median(at_rate + '.p99'):.1f} ms, non-2xx {errors}",
            "",
        ]
    if "lag.rate" in results.figures:
        lag_rows = [
            [
                label,
                f"{results.median(f'lag.{name}.p50'):.1f}",
                f"{results.median(f'lag.{name}.p99'):.1f}",
            ]
            for name, label in (
                ("store", "event readable in the store (baseline)"),
                ("read_model", "read model (projection_positions)"),
                ("websocket", "websocket inventory_update"),
                ("command", "command latency at this load"),
            )
        ]
        out += [
            f"## Projection lag after the HTTP answer, at {results.median('lag.rate'):,.0f} "
            "adjustments/s (50 % of the maximum, 2 API processes)",
            report.table(["observer", "p50 ms", "p99 ms"], lag_rows),
            "",
        ]
    report_rows = reports.rows(results)
    if report_rows:
        out += [
            "## Report queries over HTTP, one at a time (ms, p50; computed is the baseline)",
            report.table(
                ["report", "computed", "from the cache", "speed-up", "answer bytes"], report_rows
            ),
            "",
        ]
    if "catchup.projector" in results.figures or "catchup.relay" in results.figures:
        catch_rows = [
            [
                results.figures[k].label,
                results.figures[k].text(),
                f"{results.median(k + '.cpu_us'):.0f}" if k + ".cpu_us" in results.figures else "",
            ]
            for k in (
                "catchup.append",
                "catchup.read",
                "catchup.relay",
                "catchup.projector",
                "catchup.rebuild",
                "catchup.rebuild_full",
                "catchup.append_shop",
                "catchup.rebuild_shop",
            )
            if k in results.figures
        ]
        out += [
            "## Catch-up of a backlog (events/s)",
            report.table(["step", "events/s", "CPU µs/event (all processes)"], catch_rows),
            "",
        ]
    load_rows = loads.rows(results)
    if load_rows:
        out += [
            "## Loading a stock item (ms, p50; a full replay is the baseline)",
            report.table(["history (events)", "replayed", "from snapshot", "speed-up"], load_rows),
            "",
        ]
    if "memory.api.peak" in results.figures:
        memory_rows = [
            [
                "API (largest process)",
                f"{results.median('memory.api.idle'):.0f}",
                f"{results.median('memory.api.peak'):.0f}",
                "150",
            ],
            [
                "worker",
                f"{results.median('memory.worker.idle'):.0f}",
                f"{results.median('memory.worker.peak'):.0f}",
                "200",
            ],
        ]
        out += [
            "## Memory (RSS MB; idle after start is the baseline)",
            report.table(["process", "idle", "peak under load", "target ≤"], memory_rows),
            "",
        ]
    if meta["cpu"]:
        kinds = sorted({k for usage in meta["cpu"].values() for k in usage})
        cpu_rows = [
            [block, *(str(usage.get(kind, 0)) for kind in kinds)]
            for block, usage in meta["cpu"].items()
        ]
        out += [
            "## CPU while measuring (% of one core; exited = workers that ended within the block;"
            " foreign = other programs on this machine)",
            report.table(["block", *kinds], cpu_rows),
            "",
        ]
    out.append("## Targets")
    for target in results.targets:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[target.passed]
        out.append(f"{verdict}  {target.name}: {target.detail}")
    for note in results.notes:
        out.append(f"note: {note}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
