"""Two API processes, subscribers on each, a burst of commands, and a client that resumes."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from conftest import free_port
from support import PmsProcess, wait_for_api

from application.settings import Settings


@pytest.fixture
def second_api(settings: Settings, admin: None) -> Iterator[str]:
    """Another API process on its own port, sharing the same servers."""
    port = free_port()
    process = PmsProcess("api", settings, env={"PMS_PORT": str(port)}).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_api(base, process)
        yield base
    finally:
        process.stop()


async def _collect(socket: Any, wanted: set[str], until: int, into: list[dict[str, Any]]) -> None:
    """Receive inventory updates until one at or after position `until` arrived."""
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 15))
        if message.get("event") != "inventory_update":
            continue
        if message["data"]["productId"] in wanted:
            into.append(message)
        if message["position"] >= until and message["data"]["productId"] in wanted:
            return


async def test_every_subscriber_gets_every_change_once_in_order_and_resumes_without_gaps(
    api_url: str, second_api: str, admin_headers: dict[str, str], workers: None
) -> None:
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    async with httpx.AsyncClient(base_url=f"{api_url}/api/v1", headers=admin_headers) as api:
        location = (
            await api.post("/locations", json={"code": f"F{secrets.token_hex(3)}", "name": "F"})
        ).json()["id"]
        products = [
            (
                await api.post(
                    "/products",
                    json={
                        "sku": f"F-{secrets.token_hex(4)}",
                        "name": "F",
                        "price": {"amount": 1, "currency": "EUR"},
                    },
                )
            ).json()["id"]
            for _ in range(3)
        ]
        wanted = set(products)

        def url(base: str) -> str:
            return base.replace("http", "ws") + f"/api/v1/ws?token={token}"

        first = await websockets.connect(url(api_url))
        exact = await websockets.connect(url(second_api))
        resumer = await websockets.connect(url(second_api))
        for socket, topic in (
            (first, "inventory:*"),
            (exact, f"inventory:{products[0]}"),
            (resumer, "inventory:*"),
        ):
            await socket.send(json.dumps({"type": "subscribe", "topic": topic}))
            assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "subscribed"

        async def receive(n: int) -> int:
            answer = await api.post(
                "/inventory/receipts",
                json={"productId": products[n % 3], "locationId": location, "quantity": 1},
            )
            assert answer.status_code == 200, answer.text
            return int(answer.headers["X-PMS-Position"])

        burst = list(await asyncio.gather(*(receive(n) for n in range(30))))
        # The resuming client reads a few messages, drops, and comes back with `since`.
        before: list[dict[str, Any]] = []
        while len(before) < 5:
            message = json.loads(await asyncio.wait_for(resumer.recv(), 15))
            if (
                message.get("event") == "inventory_update"
                and message["data"]["productId"] in wanted
            ):
                before.append(message)
        await resumer.close()
        second_burst = list(await asyncio.gather(*(receive(n) for n in range(30, 45))))
        last = max(burst + second_burst)
        resumed = await websockets.connect(url(second_api))
        await resumed.send(
            json.dumps(
                {"type": "subscribe", "topic": "inventory:*", "since": before[-1]["position"]}
            )
        )
        assert json.loads(await asyncio.wait_for(resumed.recv(), 5))["type"] == "subscribed"

        seen_first: list[dict[str, Any]] = []
        seen_resumed: list[dict[str, Any]] = []
        await _collect(first, wanted, last, seen_first)
        await _collect(resumed, wanted, last, seen_resumed)
        seen_exact: list[dict[str, Any]] = []
        last_of_first = max(
            m["position"] for m in seen_first if m["data"]["productId"] == products[0]
        )
        await _collect(exact, {products[0]}, last_of_first, seen_exact)
        for socket in (first, exact, resumed):
            await socket.close()

    positions = [m["position"] for m in seen_first]
    assert positions == sorted(set(positions)), "in order, each once"
    assert set(burst + second_burst) <= set(positions), "every committed receipt was pushed"
    assert [m["position"] for m in seen_exact] == [
        m["position"] for m in seen_first if m["data"]["productId"] == products[0]
    ]
    resumed_positions = [m["position"] for m in before] + [m["position"] for m in seen_resumed]
    assert resumed_positions == positions, "the resumed client missed nothing and saw no duplicate"
