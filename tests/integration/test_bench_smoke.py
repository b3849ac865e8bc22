"""`python -m bench` pieces at tiny sizes: the benchmark code runs; no timing is asserted.

The bench deletes JetStream streams and empties the answer cache, so it gets an embedded NATS
and Redis of its own; PostgreSQL is the session's (fresh databases, dropped afterwards).
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import appends, catchup, loads, reports, system
from bench.__main__ import evaluate, render
from bench.http_load import HttpPlan
from bench.report import Results
from bench.servers import BenchServers, prepare_database
from workers.embedded import ServiceUrls


def test_every_bench_phase_runs_and_reports(servers: ServiceUrls, tmp_path: Path) -> None:
    results = Results(meta={"plans": {"http": {"concurrency": 4}}, "cpu": {}})
    results.meta.update(started="now", commit="test", dirty=False, cpus=2, python="3", seconds=0)
    append_plan = appends.AppendPlan(
        writers=(1, 2), events_per_save=(1, 3), reps=1, warmup=0.05, window=0.2, latency_rounds=20
    )
    given = ServiceUrls(servers.database_url, "", "")
    with BenchServers(tmp_path / "bench", given) as bench_servers:
        appends.run(
            bench_servers.settings(bench_servers.new_database("appends")), append_plan, results
        )
        system.run(
            bench_servers,
            results,
            HttpPlan(concurrency=4, warmup=0.1, window=0.3, reps=1, products_per_config=6),
            tmp_path / "logs",
            lag_plan=system.LagPlan(seconds=0.5, reps=1),
            reports_plan=reports.ReportsPlan(uncached=2, cached=2, reps=1),
        )
        catchup.run(
            bench_servers,
            results,
            catchup.CatchupPlan(events=300, reps=1, cap_seconds=5.0, shop_events=200),
            tmp_path / "logs",
        )
        loads_settings = bench_servers.settings(bench_servers.new_database("loads"))
        prepare_database(loads_settings)
        loads.run(loads_settings, loads.LoadsPlan(histories=(30,), loads=2, reps=1), results)
    evaluate(results, append_plan)
    table = render(results, append_plan)
    output = tmp_path / "bench-results.json"
    results.write_json(output)

    written = json.loads(output.read_text())
    for key in (
        "appends.xid.1ev.2w",
        "appends.stock.3ev.1w",
        "appends.psycopg.1ev.1w",
        "appends.xid.latency",
        "http.place_order.xid+workers.1api.rps",
        "http.adjust_stock.xid.2api.rps",
        "http.place_order.stock.2api.rps",
        "http.place_order.xid.2api.at_rate.p99",
        "lag.read_model.p99",
        "lag.websocket.p99",
        "memory.api.peak",
        "catchup.relay",
        "catchup.projector",
        "catchup.rebuild",
        "catchup.rebuild_shop",
        "reports.valuation.uncached",
        "reports.top-products.cached",
        "loads.30.replay",
        "loads.30.snapshot",
    ):
        assert written["figures"][key]["runs"], key
    assert written["figures"]["http.place_order.xid.2api.rps"]["median"] > 0
    assert written["figures"]["http.place_order.xid.2api.cpu_ms"]["median"] > 0
    assert "cores cap xid at" in table
    assert written["figures"]["catchup.projector"]["median"] > 0
    assert written["figures"]["catchup.rebuild_shop"]["median"] > 0
    assert written["figures"]["catchup.rebuild_shop.cpu_us"]["median"] > 0
    assert "cores cap it at" in table
    assert len(written["targets"]) == 10
    assert "## Targets" in table
    assert "## Report queries" in table
    assert "## Loading a stock item" in table
