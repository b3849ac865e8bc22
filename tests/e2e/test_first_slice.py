"""The first slice over HTTP and websockets, against real servers and processes."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import httpx
import websockets

from application.context import CommandContext
from application.identity import CreateUser, create_user
from application.settings import Settings
from application.store import EventStore


def _create_product(api_url: str, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {
        "sku": f"SKU-{secrets.token_hex(4)}",
        "name": "Widget",
        "price": {"amount": 1250, "currency": "EUR"},
        "cost": {"amount": 700, "currency": "EUR"},
        **fields,
    }
    answer = httpx.post(f"{api_url}/api/v1/products", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    assert int(answer.headers["X-PMS-Position"]) > 0
    assert answer.headers["Location"] == f"/api/v1/products/{answer.json()['id']}"
    product: dict[str, Any] = answer.json()
    return product


def _create_location(api_url: str, headers: dict[str, str]) -> dict[str, Any]:
    answer = httpx.post(
        f"{api_url}/api/v1/locations",
        json={"code": f"WH-{secrets.token_hex(3)}", "name": "Warehouse"},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    location: dict[str, Any] = answer.json()
    return location


async def test_receipt_is_readable_at_its_position_and_pushed_to_subscribers(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    product = _create_product(api_url, admin_headers)
    location = _create_location(api_url, admin_headers)
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    ws_url = api_url.replace("http", "ws") + "/api/v1/ws"
    async with websockets.connect(f"{ws_url}?token={token}") as socket:
        await socket.send(json.dumps({"type": "subscribe", "topic": f"inventory:{product['id']}"}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert ack["type"] == "subscribed"
        assert ack["topic"] == f"inventory:{product['id']}"

        async with httpx.AsyncClient(base_url=api_url, headers=admin_headers) as client:
            receipt = await client.post(
                "/api/v1/inventory/receipts",
                json={"productId": product["id"], "locationId": location["id"], "quantity": 10},
            )
            assert receipt.status_code == 200, receipt.text
            position = int(receipt.headers["X-PMS-Position"])
            stock = await client.get(
                f"/api/v1/inventory/stock/{product['id']}",
                headers={"X-PMS-Min-Position": str(position)},
            )
        assert stock.status_code == 200, stock.text
        assert stock.json() == {
            "productId": product["id"],
            "sku": product["sku"],
            "onHand": 10,
            "reserved": 0,
            "available": 10,
            "locations": [
                {"locationId": location["id"], "onHand": 10, "reserved": 0, "available": 10}
            ],
        }
        # Opening the stock item (on hand 0) and the receipt are two committed changes.
        pushed = [json.loads(await asyncio.wait_for(socket.recv(), 10)) for _ in range(2)]
    assert [p["data"]["onHand"] for p in pushed] == [0, 10]
    assert pushed[0]["position"] < pushed[1]["position"]
    assert pushed[1] == {
        "event": "inventory_update",
        "position": position,
        "data": {
            "productId": product["id"],
            "locationId": location["id"],
            "onHand": 10,
            "reserved": 0,
            "available": 10,
        },
    }


def test_adjustment_below_zero_is_refused_and_changes_nothing(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    product = _create_product(api_url, admin_headers)
    location = _create_location(api_url, admin_headers)
    moves = f"{api_url}/api/v1/inventory"
    ids = {"productId": product["id"], "locationId": location["id"]}
    received = httpx.post(f"{moves}/receipts", json={**ids, "quantity": 3}, headers=admin_headers)
    refused = httpx.post(
        f"{moves}/adjustments",
        json={**ids, "quantity": -4, "reason": "lost"},
        headers=admin_headers,
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "/problems/insufficient-stock"
    assert problem["shortages"] == [{**ids, "requested": 4, "available": 3}]
    stock = httpx.get(
        f"{moves}/stock/{product['id']}",
        headers={**admin_headers, "X-PMS-Min-Position": received.headers["X-PMS-Position"]},
    )
    assert stock.json()["onHand"] == 3


def test_bad_input_gets_a_problem_and_never_a_500(
    api_url: str, admin_headers: dict[str, str]
) -> None:
    product = _create_product(api_url, admin_headers)
    location = _create_location(api_url, admin_headers)
    ids = {"productId": product["id"], "locationId": location["id"]}
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/api/v1/inventory/receipts", b"{not json", 400, "bad-request"),
        ("POST", "/api/v1/inventory/receipts", {**ids, "quantity": "ten"}, 400, "validation-error"),
        ("POST", "/api/v1/inventory/receipts", {**ids, "quantity": 0}, 422, "invalid-value"),
        (
            "POST",
            "/api/v1/inventory/receipts",
            {**ids, "quantity": 1, "x": 1},
            400,
            "validation-error",
        ),
        (
            "POST",
            "/api/v1/inventory/receipts",
            {**ids, "productId": "00000000-0000-0000-0000-000000000000", "quantity": 1},
            404,
            "not-found",
        ),
        (
            "POST",
            "/api/v1/inventory/adjustments",
            {**ids, "quantity": 1, "reason": " "},
            422,
            "invalid-value",
        ),
        (
            "POST",
            "/api/v1/products",
            {
                "sku": product["sku"].lower(),
                "name": "Dup",
                "price": {"amount": 1, "currency": "EUR"},
            },
            409,
            "duplicate-key",
        ),
        (
            "POST",
            "/api/v1/products",
            {"sku": "OK-1", "name": "X", "price": {"amount": 1, "currency": "XXX"}},
            422,
            "invalid-value",
        ),
        ("GET", "/api/v1/products/not-a-uuid", None, 404, "not-found"),
        ("GET", "/api/v1/products/00000000-0000-0000-0000-000000000000", None, 404, "not-found"),
        ("GET", "/api/v1/products?limit=100000", None, 422, "invalid-value"),
        ("GET", "/api/v1/products?cursor=garbage", None, 422, "invalid-value"),
        (
            "GET",
            "/api/v1/inventory/stock/00000000-0000-0000-0000-000000000000",
            None,
            404,
            "not-found",
        ),
        ("GET", "/api/v1/no-such-route", None, 404, "not-found"),
        ("DELETE", "/api/v1/inventory/receipts", None, 405, "method-not-allowed"),
        ("GET", "/api/v1/products", None, 400, "validation-error"),
    ]
    for method, path, body, status, code in cases:
        headers = dict(admin_headers)
        if path == "/api/v1/products" and method == "GET":
            headers["X-PMS-Min-Position"] = "soon"
        if isinstance(body, bytes):
            answer = httpx.request(method, api_url + path, content=body, headers=headers)
        else:
            answer = httpx.request(method, api_url + path, json=body, headers=headers)
        assert answer.status_code == status, (method, path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json"), path
        problem = answer.json()
        assert problem["type"] == f"/problems/{code}", (path, problem)
        assert problem["status"] == status
        assert problem["title"]
        assert problem["detail"]
    stock = httpx.get(f"{api_url}/api/v1/inventory/stock/{product['id']}", headers=admin_headers)
    assert stock.json()["onHand"] == 0


def test_oversized_bodies_are_413(api_url: str, admin_headers: dict[str, str]) -> None:
    answer = httpx.post(
        f"{api_url}/api/v1/products",
        content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["type"] == "/problems/payload-too-large"


def test_callers_need_a_token_and_viewers_cannot_write(
    api_url: str, admin_headers: dict[str, str], settings: Settings, store: EventStore
) -> None:
    from support import login

    assert httpx.get(f"{api_url}/api/v1/products").status_code == 401
    bad = httpx.get(f"{api_url}/api/v1/products", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json()["type"] == "/problems/unauthenticated"
    email = f"viewer-{secrets.token_hex(3)}@example.com"
    create_user(
        store,
        CommandContext.system("test"),
        CreateUser(email=email, name="Vera", password="viewer-password-1", role="viewer"),
    )
    viewer = login(api_url, email, "viewer-password-1")
    assert httpx.get(f"{api_url}/api/v1/products", headers=viewer).status_code == 200
    denied = httpx.post(
        f"{api_url}/api/v1/products",
        json={"sku": "V-1", "name": "V", "price": {"amount": 1, "currency": "EUR"}},
        headers=viewer,
    )
    assert denied.status_code == 403
    assert denied.json()["type"] == "/problems/forbidden"
    me = httpx.get(f"{api_url}/api/v1/auth/me", headers=viewer).json()
    assert me["email"] == email
    assert me["role"] == "viewer"
    wrong = httpx.post(
        f"{api_url}/api/v1/auth/login", json={"email": email, "password": "wrong-password-1"}
    )
    assert wrong.status_code == 401


def test_request_id_is_echoed_and_recorded_on_events(
    api_url: str, admin_headers: dict[str, str], store: EventStore
) -> None:
    answer = httpx.post(
        f"{api_url}/api/v1/locations",
        json={"code": f"RQ-{secrets.token_hex(3)}", "name": "Traced"},
        headers={**admin_headers, "X-Request-ID": "trace-me-123"},
    )
    assert answer.headers["X-Request-ID"] == "trace-me-123"
    position = int(answer.headers["X-PMS-Position"])
    [stored] = store.notifications(position - 1, 1)
    assert stored.id == position
    assert stored.metadata["correlationId"] == "trace-me-123"
    assert stored.metadata["actor"].startswith("user:")


def test_health_reports_every_dependency(api_url: str) -> None:
    answer = httpx.get(f"{api_url}/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] in ("ok", "degraded")
    checks = body["checks"]
    for name in ("database", "nats", "redis"):
        assert checks[name]["healthy"] is True
        assert checks[name]["latency"] >= 0
    assert {"memory", "websocket", "projections", "uptime"} <= set(checks)


def test_openapi_document_is_served(api_url: str) -> None:
    answer = httpx.get(f"{api_url}/schema/openapi.json")
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    assert "/api/v1/inventory/receipts" in paths
    assert "/api/v1/products/{product_id}" in paths
