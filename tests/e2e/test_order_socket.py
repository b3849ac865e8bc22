"""Order status changes reach websocket subscribers after their read model commits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets

import httpx
import websockets


async def test_order_status_is_pushed_to_order_subscribers(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    async with httpx.AsyncClient(base_url=f"{api_url}/api/v1", headers=admin_headers) as client:
        product = (
            await client.post(
                "/products",
                json={
                    "sku": f"W-{secrets.token_hex(4)}",
                    "name": "W",
                    "price": {"amount": 900, "currency": "EUR"},
                },
            )
        ).json()["id"]
        location = (
            await client.post("/locations", json={"code": f"W{secrets.token_hex(3)}", "name": "W"})
        ).json()["id"]
        customer = (
            await client.post(
                "/customers", json={"email": f"w{secrets.token_hex(3)}@example.com", "name": "W"}
            )
        ).json()["id"]
        await client.post(
            "/inventory/receipts",
            json={"productId": product, "locationId": location, "quantity": 2},
        )
        token = admin_headers["Authorization"].removeprefix("Bearer ")
        ws_url = api_url.replace("http", "ws") + f"/api/v1/ws?token={token}"
        async with websockets.connect(ws_url) as socket:
            await socket.send(json.dumps({"type": "subscribe", "topic": "orders:*"}))
            assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "subscribed"
            placed = await client.post(
                "/orders",
                json={
                    "customerId": customer,
                    "locationId": location,
                    "shippingAddress": "x",
                    "items": [{"productId": product, "quantity": 2}],
                },
            )
            order_id = placed.json()["id"]
            confirmed = await client.patch(
                f"/orders/{order_id}/status", json={"status": "confirmed"}
            )
            messages = [json.loads(await asyncio.wait_for(socket.recv(), 10)) for _ in range(2)]
    assert [m["event"] for m in messages] == ["order_status", "order_status"]
    assert [m["data"]["status"] for m in messages] == ["pending", "confirmed"]
    assert messages[0]["data"] == {
        "orderId": order_id,
        "status": "pending",
        "paymentStatus": "unpaid",
        "fulfilmentStatus": "unfulfilled",
    }
    assert messages[1]["position"] == int(confirmed.headers["X-PMS-Position"])


async def test_unauthenticated_sockets_are_closed_with_4401(api_url: str) -> None:
    ws_url = api_url.replace("http", "ws") + "/api/v1/ws"
    async with websockets.connect(ws_url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": "not-a-token"}))
        with_code = None
        try:
            await asyncio.wait_for(socket.recv(), 5)
        except websockets.ConnectionClosed as closed:
            with_code = closed.rcvd.code if closed.rcvd else None
    assert with_code == 4401


async def test_low_stock_raises_a_system_alert_once(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    ws_url = api_url.replace("http", "ws") + f"/api/v1/ws?token={token}"
    async with httpx.AsyncClient(base_url=f"{api_url}/api/v1", headers=admin_headers) as client:
        sku = f"LOW-{secrets.token_hex(3)}".upper()
        product = (
            await client.post(
                "/products",
                json={
                    "sku": sku,
                    "name": "Low",
                    "reorderLevel": 3,
                    "price": {"amount": 1, "currency": "EUR"},
                },
            )
        ).json()["id"]
        location = (
            await client.post("/locations", json={"code": f"A{secrets.token_hex(3)}", "name": "A"})
        ).json()["id"]
        async with websockets.connect(ws_url) as socket:
            await socket.send(json.dumps({"type": "subscribe", "topic": "alerts"}))
            assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "subscribed"
            ids = {"productId": product, "locationId": location}
            await client.post("/inventory/receipts", json={**ids, "quantity": 5})
            for _ in range(3):  # 4, 3 (low: alert), 2 (still low: no second alert)
                await client.post(
                    "/inventory/adjustments", json={**ids, "quantity": -1, "reason": "sold"}
                )
            alerts = []
            with contextlib.suppress(TimeoutError):
                while True:
                    message = json.loads(await asyncio.wait_for(socket.recv(), 3))
                    if message.get("data", {}).get("productId") == product:
                        alerts.append(message)
    assert len(alerts) == 1
    assert alerts[0]["event"] == "system_alert"
    assert alerts[0]["data"]["type"] == "low_stock"
    assert alerts[0]["data"]["available"] == 3
    assert alerts[0]["data"]["sku"] == sku
