"""Reports, analytics, dashboard, projection operations and metrics over HTTP, on a shop of
their own, with figures checked against a fold of the events in the store."""

from __future__ import annotations

import csv
import io
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
import redis
from conftest import free_port
from support import PmsProcess, login, wait_for_api

from application.settings import Settings
from application.store import EventStore
from domain.orders import Order
from domain.payments import Payment
from workers.embedded import EmbeddedServices

ZONE = "America/New_York"


@dataclass
class Shop:
    """An API and a worker on a database of their own, and what was made there."""

    url: str
    settings: Settings
    api: httpx.Client
    api_process: PmsProcess
    products: list[str]
    location: str
    position: int = 0

    def get(self, path: str, **params: Any) -> httpx.Response:
        """GET, fresh at least as the last command."""
        headers = {"X-PMS-Min-Position": str(self.position)}
        return self.api.get(path, params=params, headers=headers)

    def post(self, path: str, body: Any = None) -> dict[str, Any]:
        """POST that must succeed; remembers its position."""
        answer = self.api.post(path, json=body)
        assert answer.status_code in (200, 201), answer.text
        self.position = max(self.position, int(answer.headers["X-PMS-Position"]))
        found: dict[str, Any] = answer.json()
        return found


def _money(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def _build(shop: Shop) -> None:
    """Receipts at several costs, orders shipped, one cancelled, one paid and refunded."""
    customers = [
        shop.post("/customers", {"email": f"r-{secrets.token_hex(3)}@example.com", "name": n})["id"]
        for n in ("Ann", "Bo")
    ]
    for product, costs in zip(shop.products, ([400, 700], [1000, 1000, 1300]), strict=True):
        for cost in costs:
            receipt = {"productId": product, "locationId": shop.location, "quantity": 10}
            shop.post("/inventory/receipts", {**receipt, "unitCost": _money(cost)})
    orders = []
    for n, (index, quantity) in enumerate([(0, 3), (1, 2), (0, 1), (1, 4), (0, 2)]):
        orders.append(
            shop.post(
                "/orders",
                {
                    "customerId": customers[n % 2],
                    "locationId": shop.location,
                    "shippingAddress": "1 Main St",
                    "items": [{"productId": shop.products[index], "quantity": quantity}],
                },
            )
        )
    for order in orders[:3]:
        shop.api.patch(f"/orders/{order['id']}/status", json={"status": "confirmed"})
        shop.post(f"/orders/{order['id']}/shipments", {"carrier": "DHL", "trackingNumber": "1"})
    answer = shop.api.patch(f"/orders/{orders[3]['id']}/status", json={"status": "cancelled"})
    assert answer.status_code == 200, answer.text
    payment = shop.post(f"/checkout/{orders[4]['id']}", {"method": "cash"})
    shop.post(f"/checkout/{orders[4]['id']}/confirm")
    shop.post(f"/payments/{payment['id']}/capture")
    shop.post(f"/payments/{payment['id']}/refund", {"amount": _money(150), "reason": "dented"})


@pytest.fixture(scope="module")
def shop(
    fresh_settings: Callable[[], Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    """A shop in New York time, with an API and a worker (and a NATS server) of its own."""
    with EmbeddedServices(tmp_path_factory.mktemp("nats"), postgres=False, redis=False) as own:
        chosen = fresh_settings().with_changes(nats_url=own.nats_url, port=free_port())
        worker = PmsProcess("worker", chosen).start()
        api_process = PmsProcess("api", chosen).start()
        url = f"http://127.0.0.1:{chosen.port}"
        try:
            wait_for_api(url, api_process)
            headers = login(url, chosen.admin_email, chosen.admin_password)
            with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=60) as api:
                settings = {"companyName": "Shop", "defaultCurrency": "EUR", "timezone": ZONE}
                assert api.put(
                    "/settings", json={**settings, "taxRateBasisPoints": 2000}
                ).is_success
                products = [
                    api.post(
                        "/products",
                        json={
                            "sku": f"R-{n}-{secrets.token_hex(3)}",
                            "name": f"P{n}",
                            "price": _money(p),
                        },
                    ).json()["id"]
                    for n, p in enumerate((2500, 1800))
                ]
                location = api.post(
                    "/locations", json={"code": f"R{secrets.token_hex(2)}", "name": "W"}
                )
                made = Shop(url, chosen, api, api_process, products, location.json()["id"])
                _build(made)
                yield made
        finally:
            api_process.stop()
            worker.stop()


def _events(settings: Settings) -> list[tuple[Any, Any]]:
    store = EventStore.connect(settings)
    try:
        return [(store.app.mapper.to_domain_event(n), n) for n in store.iter_notifications(0)]
    finally:
        store.close()


def test_sales_per_day_are_the_fold_of_the_stored_events(shop: Shop) -> None:
    orders: dict[Any, dict[str, Any]] = {}
    refunds: dict[date, int] = defaultdict(int)
    payments: dict[Any, Any] = {}
    for event, _ in _events(shop.settings):
        if isinstance(event, Order.Placed):
            day = event.timestamp.astimezone(ZoneInfo(ZONE)).date()
            subtotal = sum(line.line_total.amount for line in event.lines)
            units = sum(line.quantity for line in event.lines)
            orders[event.originator_id] = {"day": day, "revenue": subtotal, "units": units}
        elif isinstance(event, Order.Cancelled):
            orders[event.originator_id]["cancelled"] = True
        elif isinstance(event, Payment.Created):
            payments[event.originator_id] = event.order_id
        elif isinstance(event, Payment.Refunded):
            refunds[event.timestamp.astimezone(ZoneInfo(ZONE)).date()] += event.refund.amount.amount
    expected: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for order in orders.values():
        if not order.get("cancelled"):
            row = expected[order["day"]]
            row[0] += 1
            row[1] += order["units"]
            row[2] += order["revenue"]
    for day, amount in refunds.items():
        expected[day][3] += amount
    days = sorted(expected)
    answer = shop.get(
        "/analytics/sales",
        startDate=(days[0] - timedelta(days=1)).isoformat(),
        endDate=(days[-1] + timedelta(days=1)).isoformat(),
        groupBy="day",
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["timezone"] == ZONE
    assert int(answer.headers["X-PMS-Position"]) == body["position"] >= shop.position
    got = {
        date.fromisoformat(b["period"]): [
            b["orders"],
            b["units"],
            b["revenue"]["amount"],
            b["refunds"]["amount"],
        ]
        for b in body["buckets"]
    }
    assert len(got) == len(days) + 2  # empty days are there too
    assert {day: got[day] for day in days} == {day: expected[day] for day in days}
    assert body["totals"]["net"]["amount"] == sum(r[2] - r[3] for r in expected.values())
    assert body["totals"]["tax"]["amount"] == sum(b["tax"]["amount"] for b in body["buckets"])


def _pages(shop: Shop, name: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = shop.get(f"/reports/{name}", **query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert int(answer.headers["X-PMS-Position"]) == body["position"]
        items += body["items"]
        cursor = body["nextCursor"]
        if cursor is None:
            return items


def _csv(shop: Shop, name: str, **params: Any) -> tuple[list[str], list[dict[str, str]], int]:
    answer = shop.get(f"/reports/{name}", format="csv", **params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(answer.text)))
    header = lines[0]
    return (
        header,
        [dict(zip(header, line, strict=True)) for line in lines[1:]],
        int(answer.headers["X-PMS-Position"]),
    )


@pytest.mark.parametrize(
    "name",
    [
        "stock-balance",
        "stock-ledger",
        "valuation",
        "sales-by-product",
        "sales-by-customer",
        "top-products",
    ],
)
def test_json_pages_and_the_csv_export_hold_the_same_rows(shop: Shop, name: str) -> None:
    items = _pages(shop, name, limit=2)
    header, rows, position = _csv(shop, name)
    assert position >= shop.position
    assert items, name
    assert header == list(items[0])
    assert len(rows) == len(items)
    for item, row in zip(items, rows, strict=True):
        for key, value in item.items():
            if isinstance(value, dict):  # money: decimal amount in the CSV
                assert row[key] == f"{value['amount'] / 100:.2f}", key
            elif value is not None and not isinstance(value, str):
                assert row[key] == str(value), key


def test_sales_reports_price_goods_at_their_moving_average_cost(shop: Shop) -> None:
    products = {row["productId"]: row for row in _pages(shop, "sales-by-product", limit=50)}
    first, second = (products[p] for p in shop.products)
    # Not cancelled: product 0 sold 3 + 1 + 2 units at 2500, product 1 sold 2 at 1800.
    assert (first["units"], first["revenue"]["amount"]) == (6, 6 * 2500)
    assert (second["units"], second["revenue"]["amount"]) == (2, 2 * 1800)
    # All receipts came before the orders: average cost (400+700)/2 and (1000+1000+1300)/3.
    assert first["cost"]["amount"] == 6 * 550
    assert second["cost"]["amount"] == 2 * 1100
    assert first["margin"]["amount"] == first["revenue"]["amount"] - first["cost"]["amount"]
    top = _pages(shop, "top-products", limit=1)
    assert [row["productId"] for row in top] == shop.products
    assert [row["rank"] for row in top] == [1, 2]


def test_valuation_metrics_and_dashboard_agree(shop: Shop) -> None:
    valuation = _pages(shop, "valuation", limit=50)
    metrics = shop.get("/analytics/inventory/metrics").json()
    dashboard = shop.get("/dashboard/metrics").json()
    value = sum(row["value"]["amount"] for row in valuation)
    # Shipped: 3 + 1 units of product 0 at 550, 2 of product 1 at 1100.
    assert value == (20 - 4) * 550 + (30 - 2) * 1100
    assert metrics["totalValue"]["amount"] == value == dashboard["totalInventoryValue"]["amount"]
    assert metrics["totalUnits"] == 20 - 4 + 30 - 2
    assert [loc["locationId"] for loc in metrics["locations"]] == [shop.location]
    assert dashboard["totalOrders"] == 4
    assert dashboard["pendingOrders"] <= 1  # the paid one is confirmed by the process manager
    assert dashboard["totalRevenue"]["amount"] == 6 * 2500 + 2 * 1800
    assert dashboard["openReturns"] == 0
    assert dashboard["revenueChangePercent"] is None  # nothing sold the 30 days before


def test_reports_refuse_unknown_names_filters_and_cursors(shop: Shop) -> None:
    missing = shop.get("/reports/payroll")
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/not-found"
    assert shop.get("/reports/stock-balance", customerId=shop.products[0]).status_code == 422
    assert shop.get("/reports/stock-balance", cursor="bm9wZQ").status_code == 422
    assert shop.get("/reports/valuation", limit=0).status_code == 422
    assert (
        shop.get("/analytics/sales", startDate="2026-02-01", endDate="2026-01-01").status_code
        == 422
    )


def test_employees_and_viewers_read_reports_but_only_managers_export(shop: Shop) -> None:
    url = f"{shop.url}/api/v1/reports/stock-balance"
    for role in ("viewer", "employee", "manager"):
        headers = login(shop.url, *_same_user(shop, role))
        assert httpx.get(url, headers=headers).status_code == 200, role
        exported = httpx.get(url, params={"format": "csv"}, headers=headers)
        assert exported.status_code == (200 if role == "manager" else 403), role


def _same_user(shop: Shop, role: str) -> tuple[str, str]:
    email, password = f"{role}-{secrets.token_hex(3)}@example.com", "a-long-enough-password"
    made = shop.api.post(
        "/users", json={"email": email, "name": role, "password": password, "role": role}
    )
    assert made.status_code == 201, made.text
    return email, password


def test_a_cached_answer_is_the_answer_at_its_position(shop: Shop) -> None:
    first = shop.get("/reports/sales-by-customer")
    again = shop.get("/reports/sales-by-customer")
    assert first.content == again.content
    position = first.json()["position"]
    client = redis.Redis.from_url(shop.settings.redis_url)
    assert client.keys(f"pms:answers:report:{position}:*")
    customer = shop.post(
        "/customers", {"email": f"c-{secrets.token_hex(3)}@example.com", "name": "C"}
    )
    shop.post(
        "/orders",
        {
            "customerId": customer["id"],
            "locationId": shop.location,
            "shippingAddress": "x",
            "items": [{"productId": shop.products[1], "quantity": 1}],
        },
    )
    fresh = shop.get("/reports/sales-by-customer").json()
    assert fresh["position"] >= shop.position > position
    assert customer["id"] in [row["customerId"] for row in fresh["items"]]


def test_rebuild_over_http_keeps_answers_and_reports_progress(shop: Shop) -> None:
    before = _pages(shop, "sales-by-product", limit=50)
    ledger = _pages(shop, "stock-ledger", limit=500)
    started = shop.api.post("/projections/main/rebuild")
    assert started.status_code == 202, started.text
    assert started.json()["name"] == "main"
    deadline = time.monotonic() + 60
    while True:
        [group] = shop.api.get("/projections").json()["items"]
        if not group["rebuildRequested"] and group["rebuild"] is None:
            break
        assert time.monotonic() < deadline, group
        time.sleep(0.2)
    assert group["state"] == "running"
    assert _pages(shop, "sales-by-product", limit=50) == before
    assert _pages(shop, "stock-ledger", limit=500) == ledger
    assert shop.api.post("/projections/nonsense/rebuild").status_code == 404


def test_metrics_show_lag_latency_and_commands(shop: Shop) -> None:
    shop.get("/reports/stock-balance")
    text = httpx.get(f"{shop.url}/metrics").text
    assert 'pms_projection_lag_events{group="main"}' in text
    assert 'pms_projection_lag_seconds{group="main"}' in text
    assert 'route="/api/v1/reports/{name}"' in text
    assert 'pms_commands_total{method="POST",route="/api/v1/orders",status="201"}' in text
    assert "pms_event_store_append_seconds_count" in text
    assert "pms_websocket_connections 0" in text


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


MOVES = 200_000


def test_a_large_ledger_streams_as_csv_in_bounded_memory(
    fresh_settings: Callable[[], Settings], tmp_path: Path
) -> None:
    chosen = fresh_settings().with_changes(port=free_port())
    with psycopg.connect(chosen.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO read.stock_moves (position, stock_item_id, product_id, location_id, kind,"
            " quantity, on_hand_after, unit_cost, currency, reason, document, actor, at)"
            " SELECT g, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'received', 5,"
            " 5 * g, 1234, 'EUR', 'receipt', 'po:' || g, 'user:loader', now()"
            f" FROM generate_series(1, {MOVES}) g"
        )
    process = PmsProcess("api", chosen).start()
    url = f"http://127.0.0.1:{chosen.port}"
    try:
        wait_for_api(url, process)
        headers = login(url, chosen.admin_email, chosen.admin_password)
        report = f"{url}/api/v1/reports/stock-ledger"
        nothing = {"format": "csv", "productId": "00000000-0000-0000-0000-000000000000"}
        assert httpx.get(report, params=nothing, headers=headers).text.count("\n") == 1
        assert process.process is not None
        pid = process.process.pid
        before = _rss_kb(pid)
        peak = [before]
        streaming = threading.Event()

        def sample() -> None:
            while not streaming.is_set():
                peak[0] = max(peak[0], _rss_kb(pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        size, lines = 0, 0
        started = time.monotonic()
        try:
            with httpx.stream(
                "GET", report, params={"format": "csv"}, headers=headers, timeout=120
            ) as answer:
                assert answer.status_code == 200
                for chunk in answer.iter_bytes():
                    size += len(chunk)
                    lines += chunk.count(b"\n")
        finally:
            streaming.set()
            sampler.join()
        seconds = time.monotonic() - started
    finally:
        process.stop()
    assert lines == MOVES + 1
    grown_mb = (peak[0] - before) / 1024
    mib = size / 2**20
    print(f"\nCSV {mib:.0f} MiB, {MOVES:,} rows in {seconds:.1f} s; API RSS +{grown_mb:.1f} MiB")
    assert size > 30 * 2**20
    assert grown_mb < 25  # far less than the answer: it was never held whole
