"""HTTP commands end to end: place order (3 lines) and stock adjustment, closed loop, and
place order in an open loop at a fixed rate.

Fixtures go in over HTTP: one location, products with ample stock, customers. Each measured
configuration orders from its own slice of products, so stock items carry a similar history
(they are replayed from their events on every command) whichever configuration runs later.
"""

from __future__ import annotations

import random
import secrets
import statistics
import sys
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import uvloop

from bench.http_client import (
    Answer,
    Window,
    call,
    closed_loop,
    encode_request,
    open_loop,
    run_all,
)
from bench.report import Results, percentile
from bench.servers import CpuMeter

HOST = "127.0.0.1"
STOCK_PER_PRODUCT = 10_000_000
CUSTOMERS = 50
SETUP_CONCURRENCY = 16
PREBUILT_REQUESTS = 5000
# Open-loop runs: enough connections that the client never holds a request back unless the
# server is far behind (then its wait counts in the latency, which runs from the scheduled send).
OPEN_LOOP_IN_FLIGHT = 256


@dataclass(frozen=True)
class HttpPlan:
    """What to run."""

    concurrency: int = 32
    warmup: float = 1.0
    window: float = 4.0
    reps: int = 3
    products_per_config: int = 300


@dataclass
class Shop:
    """Fixtures on one database."""

    port: int
    token: str
    location: str
    products: list[str]
    customers: list[str]


async def _login(port: int, email: str, password: str) -> str:
    answer = await call(
        HOST,
        port,
        encode_request("POST", "/api/v1/auth/login", "", {"email": email, "password": password}),
    )
    if answer.status != 200:
        raise RuntimeError(f"login failed: {answer.status} {answer.body[:200]!r}")
    return str(answer.json()["accessToken"])


def _created_ids(answers: Sequence[Answer], what: str) -> list[str]:
    ids = []
    for answer in answers:
        if answer.status not in (200, 201):
            raise RuntimeError(f"creating {what} failed: {answer.status} {answer.body[:300]!r}")
        ids.append(str(answer.json()["id"]))
    return ids


async def _create_shop(port: int, email: str, password: str, products: int) -> Shop:
    token = await _login(port, email, password)
    tag = secrets.token_hex(3)
    [location] = _created_ids(
        await run_all(
            HOST,
            port,
            [encode_request("POST", "/api/v1/locations", token, {"code": f"B-{tag}", "name": "B"})],
            1,
        ),
        "location",
    )
    product_ids = _created_ids(
        await run_all(
            HOST,
            port,
            [
                encode_request(
                    "POST",
                    "/api/v1/products",
                    token,
                    {
                        "sku": f"B-{tag}-{i}",
                        "name": f"Bench product {i}",
                        "price": {"amount": 1000 + i, "currency": "EUR"},
                        "cost": {"amount": 500, "currency": "EUR"},
                    },
                )
                for i in range(products)
            ],
            SETUP_CONCURRENCY,
        ),
        "products",
    )
    receipts = await run_all(
        HOST,
        port,
        [
            encode_request(
                "POST",
                "/api/v1/inventory/receipts",
                token,
                {"productId": p, "locationId": location, "quantity": STOCK_PER_PRODUCT},
            )
            for p in product_ids
        ],
        SETUP_CONCURRENCY,
    )
    bad = [a for a in receipts if a.status != 200]
    if bad:
        raise RuntimeError(f"receipts failed: {bad[0].status} {bad[0].body[:300]!r}")
    customer_ids = _created_ids(
        await run_all(
            HOST,
            port,
            [
                encode_request(
                    "POST",
                    "/api/v1/customers",
                    token,
                    {"email": f"bench-{tag}-{i}@example.com", "name": f"Customer {i}"},
                )
                for i in range(CUSTOMERS)
            ],
            SETUP_CONCURRENCY,
        ),
        "customers",
    )
    return Shop(port, token, location, product_ids, customer_ids)


def create_shop(port: int, email: str, password: str, products: int) -> Shop:
    """Log in and create a location, `products` products with stock, and customers."""
    return uvloop.run(_create_shop(port, email, password, products))


def login(port: int, email: str, password: str) -> str:
    """An access token."""
    return uvloop.run(_login(port, email, password))


def order_requests(shop: Shop, products: Sequence[str], token: str, seed: int) -> list[bytes]:
    """Pre-encoded place-order requests: 3 distinct products, 1 unit each."""
    rng = random.Random(seed)
    return [
        encode_request(
            "POST",
            "/api/v1/orders",
            token,
            {
                "customerId": rng.choice(shop.customers),
                "locationId": shop.location,
                "shippingAddress": "1 Bench Street",
                "items": [{"productId": p, "quantity": 1} for p in rng.sample(products, 3)],
            },
        )
        for _ in range(PREBUILT_REQUESTS)
    ]


def adjust_requests(shop: Shop, products: Sequence[str], token: str, seed: int) -> list[bytes]:
    """Pre-encoded stock adjustments of +1 on a random product of the slice."""
    rng = random.Random(seed)
    return [
        encode_request(
            "POST",
            "/api/v1/inventory/adjustments",
            token,
            {
                "productId": rng.choice(products),
                "locationId": shop.location,
                "quantity": 1,
                "reason": "bench",
            },
        )
        for _ in range(PREBUILT_REQUESTS)
    ]


COMMANDS = {"place_order": order_requests, "adjust_stock": adjust_requests}


def key(command: str, variant: str, api_processes: int) -> str:
    """Figure key prefix of one command in one configuration."""
    return f"http.{command}.{variant}.{api_processes}api"


def seed(*names: str) -> int:
    """The same requests in every run (`hash` of a str changes from process to process)."""
    return zlib.crc32(":".join(names).encode())


def measure(
    results: Results,
    shop: Shop,
    products: Sequence[str],
    *,
    command: str,
    variant: str,
    api_processes: int,
    plan: HttpPlan,
) -> list[Window]:
    """Closed-loop load of one command; records req/s, p50 and p99 per window."""
    requests = COMMANDS[command](shop, products, shop.token, seed(command, variant))
    with CpuMeter() as meter:
        windows = uvloop.run(
            closed_loop(
                HOST,
                shop.port,
                requests,
                concurrency=plan.concurrency,
                warmup=plan.warmup,
                window=plan.window,
                windows=plan.reps,
            )
        )
    prefix = key(command, variant, api_processes)
    label = f"{command} {variant} {api_processes} API"
    rate = statistics.median(window.rate for window in windows)
    # Servers, API and load generator, whatever the store: what bounds its throughput here.
    meter.add_per_operation(results, f"{prefix}.cpu_ms", f"{label}, CPU per request", rate)
    for window in windows:
        results.add(f"{prefix}.rps", label, "req/s", window.rate, errors=window.errors)
        p50, p99 = _add_percentiles(results, prefix, label, window.latencies)
        errors = f" errors {window.errors}" if window.errors else ""
        print(
            f"  {label}: {window.rate:,.0f} req/s p50 {p50:.1f} ms p99 {p99:.1f} ms{errors}",
            file=sys.stderr,
            flush=True,
        )
    return windows


def measure_at_rate(
    results: Results,
    shop: Shop,
    products: Sequence[str],
    *,
    command: str,
    variant: str,
    api_processes: int,
    rate: float,
    plan: HttpPlan,
) -> None:
    """Open-loop load at `rate` req/s: p50 and p99 from each request's scheduled send.

    A closed loop at saturation measures its own queue (latency ≈ in flight ÷ throughput);
    this asks what a client sees at a given arrival rate.
    """
    requests = COMMANDS[command](shop, products, shop.token, seed(command, variant, "at rate"))
    prefix = key(command, variant, api_processes) + ".at_rate"
    label = f"{command} {variant} {api_processes} API at {rate:,.0f} req/s"
    for _ in range(plan.reps):
        sent = uvloop.run(
            open_loop(
                HOST,
                shop.port,
                requests,
                rate=rate,
                seconds=plan.window,
                max_in_flight=OPEN_LOOP_IN_FLIGHT,
            )
        )
        latencies = [s.answered - s.scheduled for s in sent if 200 <= s.status < 300]
        errors = dict(Counter(s.status for s in sent if not 200 <= s.status < 300))
        results.add(f"{prefix}.rate", f"{label}: offered", "req/s", rate, errors=errors)
        p50, p99 = _add_percentiles(results, prefix, label, latencies)
        failed = f" errors {errors}" if errors else ""
        print(f"  {label}: p50 {p50:.1f} ms p99 {p99:.1f} ms{failed}", file=sys.stderr, flush=True)


def _add_percentiles(
    results: Results, prefix: str, label: str, latencies: list[float]
) -> tuple[float, float]:
    """Record p50 and p99 (ms) of latencies in seconds; returns them."""
    p50 = percentile(latencies, 0.50) * 1000
    p99 = percentile(latencies, 0.99) * 1000
    results.add(f"{prefix}.p50", f"{label} p50", "ms", p50)
    results.add(f"{prefix}.p99", f"{label} p99", "ms", p99)
    return p50, p99


def slices(products: list[str], count: int) -> list[list[str]]:
    """`count` disjoint slices of the products."""
    size = len(products) // count
    return [products[i * size : (i + 1) * size] for i in range(count)]
