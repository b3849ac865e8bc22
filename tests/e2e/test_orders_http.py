"""Orders over HTTP: pricing, reservations that never oversell, lifecycle, idempotency."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from typing import Any
from uuid import UUID

import httpx
import psycopg

from application.settings import Settings
from application.store import EventStore
from domain.inventory import StockItem
from domain.orders import Order


def _post(api_url: str, path: str, headers: dict[str, str], body: Any) -> httpx.Response:
    return httpx.post(f"{api_url}/api/v1{path}", json=body, headers=headers, timeout=30)


def _product(api_url: str, headers: dict[str, str], price: int, **extra: Any) -> str:
    answer = _post(
        api_url,
        "/products",
        headers,
        {
            "sku": f"O-{secrets.token_hex(4)}",
            "name": "Thing",
            "price": {"amount": price, "currency": "EUR"},
            **extra,
        },
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _location(api_url: str, headers: dict[str, str]) -> str:
    answer = _post(
        api_url, "/locations", headers, {"code": f"L-{secrets.token_hex(3)}", "name": "Shop"}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _customer(api_url: str, headers: dict[str, str]) -> str:
    answer = _post(
        api_url,
        "/customers",
        headers,
        {"email": f"c-{secrets.token_hex(4)}@example.com", "name": "Cleo"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _receive(api_url: str, headers: dict[str, str], product: str, location: str, n: int) -> None:
    answer = _post(
        api_url,
        "/inventory/receipts",
        headers,
        {"productId": product, "locationId": location, "quantity": n},
    )
    assert answer.status_code == 200, answer.text


def test_order_is_priced_server_side_with_merged_lines_and_reserves_stock(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    shirt = _product(api_url, admin_headers, 1999)
    mug = _product(api_url, admin_headers, 550)
    location = _location(api_url, admin_headers)
    customer = _customer(api_url, admin_headers)
    _receive(api_url, admin_headers, shirt, location, 5)
    _receive(api_url, admin_headers, mug, location, 5)
    answer = _post(
        api_url,
        "/orders",
        admin_headers,
        {
            "customerId": customer,
            "locationId": location,
            "shippingAddress": "1 Main St",
            "items": [
                {"productId": shirt, "quantity": 1},
                {"productId": mug, "quantity": 2},
                {"productId": shirt, "quantity": 1},
            ],
        },
    )
    assert answer.status_code == 201, answer.text
    order = answer.json()
    assert order["orderNumber"].startswith("ORD-")
    assert order["status"] == "pending"
    lines = {line["productId"]: line for line in order["lines"]}
    assert lines[shirt]["quantity"] == 2
    assert lines[shirt]["unitPrice"] == {"amount": 1999, "currency": "EUR"}
    assert lines[shirt]["lineTotal"] == {"amount": 3998, "currency": "EUR"}
    assert order["subtotal"] == {"amount": 3998 + 1100, "currency": "EUR"}
    assert order["total"]["amount"] == order["subtotal"]["amount"] + order["tax"]["amount"]
    position = answer.headers["X-PMS-Position"]
    fresh = {**admin_headers, "X-PMS-Min-Position": position}
    stock = httpx.get(f"{api_url}/api/v1/inventory/stock/{shirt}", headers=fresh).json()
    assert (stock["onHand"], stock["reserved"], stock["available"]) == (5, 2, 3)
    detail = httpx.get(f"{api_url}/api/v1/orders/{order['id']}", headers=fresh)
    assert detail.status_code == 200
    assert detail.json()["total"] == order["total"]


def test_order_lifecycle_ships_partially_then_fully_and_refuses_illegal_moves(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    product = _product(api_url, admin_headers, 1000)
    location = _location(api_url, admin_headers)
    customer = _customer(api_url, admin_headers)
    _receive(api_url, admin_headers, product, location, 10)
    order = _post(
        api_url,
        "/orders",
        admin_headers,
        {
            "customerId": customer,
            "locationId": location,
            "shippingAddress": "2 Side St",
            "items": [{"productId": product, "quantity": 4}],
        },
    ).json()
    base = f"{api_url}/api/v1/orders/{order['id']}"
    too_early = _post(
        api_url,
        f"/orders/{order['id']}/shipments",
        admin_headers,
        {"carrier": "DHL", "trackingNumber": "1"},
    )
    assert too_early.status_code == 409
    assert too_early.json()["type"] == "/problems/illegal-transition"
    confirmed = httpx.patch(f"{base}/status", json={"status": "confirmed"}, headers=admin_headers)
    assert confirmed.status_code == 200, confirmed.text
    first = _post(
        api_url,
        f"/orders/{order['id']}/shipments",
        admin_headers,
        {
            "carrier": "DHL",
            "trackingNumber": "T1",
            "items": [{"productId": product, "quantity": 1}],
        },
    )
    assert first.status_code == 201, first.text
    assert first.json()["fulfilmentStatus"] == "partially_shipped"
    cancel = httpx.patch(f"{base}/status", json={"status": "cancelled"}, headers=admin_headers)
    assert cancel.status_code == 409
    rest = _post(
        api_url,
        f"/orders/{order['id']}/shipments",
        admin_headers,
        {"carrier": "DHL", "trackingNumber": "T2"},
    )
    assert rest.status_code == 201, rest.text
    assert rest.json()["status"] == "shipped"
    delivered = httpx.patch(f"{base}/status", json={"status": "delivered"}, headers=admin_headers)
    assert delivered.status_code == 200
    fresh = {**admin_headers, "X-PMS-Min-Position": delivered.headers["X-PMS-Position"]}
    stock = httpx.get(f"{api_url}/api/v1/inventory/stock/{product}", headers=fresh).json()
    assert (stock["onHand"], stock["reserved"]) == (6, 0)
    timeline = httpx.get(f"{base}/timeline", headers=fresh).json()["items"]
    assert len(timeline) == 5
    moves = httpx.get(
        f"{api_url}/api/v1/inventory/moves", params={"productId": product}, headers=fresh
    ).json()["items"]
    assert [(m["kind"], m["quantity"]) for m in moves] == [
        ("received", 10),
        ("issued", -1),
        ("issued", -3),
    ]
    assert moves[1]["document"] == f"order:{order['id']}"


def test_cancelling_releases_the_reservation(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    product = _product(api_url, admin_headers, 100)
    location = _location(api_url, admin_headers)
    customer = _customer(api_url, admin_headers)
    _receive(api_url, admin_headers, product, location, 3)
    order = _post(
        api_url,
        "/orders",
        admin_headers,
        {
            "customerId": customer,
            "locationId": location,
            "shippingAddress": "x",
            "items": [{"productId": product, "quantity": 3}],
        },
    ).json()
    cancelled = httpx.patch(
        f"{api_url}/api/v1/orders/{order['id']}/status",
        json={"status": "cancelled", "note": "changed mind"},
        headers=admin_headers,
    )
    assert cancelled.status_code == 200
    fresh = {**admin_headers, "X-PMS-Min-Position": cancelled.headers["X-PMS-Position"]}
    stock = httpx.get(f"{api_url}/api/v1/inventory/stock/{product}", headers=fresh).json()
    assert stock["available"] == 3


def test_bad_orders_are_refused_with_nothing_written(
    api_url: str, admin_headers: dict[str, str], store: EventStore
) -> None:
    product = _product(api_url, admin_headers, 100)
    archived = _product(api_url, admin_headers, 100)
    httpx.delete(f"{api_url}/api/v1/products/{archived}", headers=admin_headers)
    location = _location(api_url, admin_headers)
    customer = _customer(api_url, admin_headers)
    _receive(api_url, admin_headers, product, location, 1)
    unknown = "00000000-0000-0000-0000-000000000001"
    base = {"customerId": customer, "locationId": location, "shippingAddress": "x"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**base, "items": []}, 422, "invalid-value"),
        ({**base, "items": [{"productId": product, "quantity": 0}]}, 422, "invalid-value"),
        ({**base, "items": [{"productId": product, "quantity": -2}]}, 422, "invalid-value"),
        ({**base, "items": [{"productId": unknown, "quantity": 1}]}, 404, "not-found"),
        ({**base, "items": [{"productId": archived, "quantity": 1}]}, 409, "illegal-transition"),
        (
            {**base, "customerId": unknown, "items": [{"productId": product, "quantity": 1}]},
            404,
            "not-found",
        ),
        (
            {**base, "locationId": unknown, "items": [{"productId": product, "quantity": 1}]},
            404,
            "not-found",
        ),
        ({**base, "items": [{"productId": product, "quantity": 2}]}, 409, "insufficient-stock"),
        ({**base, "items": [{"productId": product, "quantity": "one"}]}, 400, "validation-error"),
        ({"items": [{"productId": product, "quantity": 1}]}, 400, "validation-error"),
    ]
    before = store.max_position()
    for body, status, code in cases:
        answer = _post(api_url, "/orders", admin_headers, body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["type"] == f"/problems/{code}", (body, answer.text)
    assert store.max_position() == before


def test_idempotency_key_replays_the_first_answer(
    api_url: str, admin_headers: dict[str, str]
) -> None:
    key = {"Idempotency-Key": secrets.token_hex(8)}
    body = {"code": f"ID-{secrets.token_hex(3)}", "name": "Once"}
    first = _post(api_url, "/locations", {**admin_headers, **key}, body)
    again = _post(api_url, "/locations", {**admin_headers, **key}, body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["X-PMS-Position"] == first.headers["X-PMS-Position"]
    other = _post(api_url, "/locations", {**admin_headers, **key}, {**body, "name": "Twice"})
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"


async def test_concurrent_orders_never_oversell(
    api_url: str,
    admin_headers: dict[str, str],
    settings: Settings,
    store: EventStore,
    workers: None,
) -> None:
    products = [_product(api_url, admin_headers, 100 + i) for i in range(3)]
    locations = [_location(api_url, admin_headers) for _ in range(2)]
    customer = _customer(api_url, admin_headers)
    received: Counter[tuple[str, str]] = Counter()
    for product in products:
        for location in locations:
            _receive(api_url, admin_headers, product, location, 4)
            received[(product, location)] += 4
    bodies = []
    for i in range(48):
        location = locations[i % 2]
        items = [
            {"productId": products[(i + k) % 3], "quantity": 1 + (i + k) % 2}
            for k in range(1 + i % 3)
        ]
        bodies.append(
            {"customerId": customer, "locationId": location, "shippingAddress": "x", "items": items}
        )
    gate = asyncio.Semaphore(12)
    async with httpx.AsyncClient(
        base_url=f"{api_url}/api/v1", headers=admin_headers, timeout=60
    ) as client:

        async def place(body: dict[str, Any]) -> httpx.Response:
            async with gate:
                return await client.post("/orders", json=body)

        answers = await asyncio.gather(*(place(body) for body in bodies))
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] > 0
    assert statuses[409] > 0
    reserved: Counter[tuple[str, str]] = Counter()
    for body, answer in zip(bodies, answers, strict=True):
        if answer.status_code == 201:
            for line in answer.json()["lines"]:
                reserved[(str(line["productId"]), str(body["locationId"]))] += line["quantity"]
    for key, quantity in reserved.items():
        assert quantity <= received[key], key
    # The write side agrees with what was answered ...
    for product, location in received:
        item: StockItem = store.app.repository.get(
            StockItem.create_id(UUID(product), UUID(location))
        )
        assert item.reserved == reserved[(product, location)]
        assert item.available >= 0
    for answer in answers:
        if answer.status_code == 201:
            assert isinstance(store.app.repository.get(UUID(answer.json()["id"])), Order)
    # ... and the read model agrees with the write side once it caught up.
    last = max(int(a.headers["X-PMS-Position"]) for a in answers if a.status_code == 201)
    async with httpx.AsyncClient(base_url=f"{api_url}/api/v1", headers=admin_headers) as client:
        caught_up = await client.get("/inventory/alerts", headers={"X-PMS-Min-Position": str(last)})
    assert caught_up.status_code == 200
    with psycopg.connect(settings.database_url) as connection:
        for product, location in received:
            row = connection.execute(
                "SELECT reserved FROM read.stock_levels WHERE product_id = %s AND location_id = %s",
                (product, location),
            ).fetchone()
            assert row is not None
            assert row[0] == reserved[(product, location)]


def test_transfers_counts_and_low_stock_alerts(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    product = _product(api_url, admin_headers, 300, reorderLevel=5, reorderQuantity=20)
    here, there = _location(api_url, admin_headers), _location(api_url, admin_headers)
    _receive(api_url, admin_headers, product, here, 8)
    moved = _post(
        api_url,
        "/inventory/transfers",
        admin_headers,
        {"productId": product, "fromLocationId": here, "toLocationId": there, "quantity": 3},
    )
    assert moved.status_code == 201, moved.text
    assert moved.json()["source"]["onHand"] == 5
    assert moved.json()["destination"]["onHand"] == 3
    too_many = _post(
        api_url,
        "/inventory/transfers",
        admin_headers,
        {"productId": product, "fromLocationId": here, "toLocationId": there, "quantity": 6},
    )
    assert too_many.status_code == 409
    counted = _post(
        api_url,
        "/inventory/counts",
        admin_headers,
        {"locationId": there, "lines": [{"productId": product, "counted": 1}]},
    )
    assert counted.status_code == 200, counted.text
    assert counted.json()[0]["onHand"] == 1
    fresh = {**admin_headers, "X-PMS-Min-Position": counted.headers["X-PMS-Position"]}
    stock = httpx.get(f"{api_url}/api/v1/inventory/stock/{product}", headers=fresh).json()
    assert stock["onHand"] == 6
    alerts = httpx.get(f"{api_url}/api/v1/inventory/alerts", headers=fresh).json()["items"]
    assert product not in [a["productId"] for a in alerts]  # 6 available, reorder level 5
    written_off = _post(
        api_url,
        "/inventory/adjustments",
        admin_headers,
        {"productId": product, "locationId": here, "quantity": -2, "reason": "damaged"},
    )
    fresh = {**admin_headers, "X-PMS-Min-Position": written_off.headers["X-PMS-Position"]}
    alerts = httpx.get(f"{api_url}/api/v1/inventory/alerts", headers=fresh).json()["items"]
    [alert] = [a for a in alerts if a["productId"] == product]
    assert (alert["available"], alert["reorderLevel"], alert["suggestedReorderQuantity"]) == (
        4,
        5,
        20,
    )
    moves = httpx.get(
        f"{api_url}/api/v1/inventory/moves",
        params={"productId": product, "locationId": there},
        headers=fresh,
    ).json()
    assert [(m["kind"], m["quantity"], m["onHandAfter"]) for m in moves["items"]] == [
        ("transferred_in", 3, 3),
        ("counted", -2, 1),
    ]
