"""Payments over HTTP: manual and Stripe flows, webhooks, process managers, racing refunds."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import httpx
import pytest
from conftest import free_port
from fake_stripe import FakeStripe, fake_stripe
from support import PmsProcess, login, wait_for_api

from application.settings import Settings
from application.store import EventStore
from application.stripe import sign
from domain.payments import Payment

WEBHOOK_SECRET = "whsec_e2e"


def _order(api: httpx.Client, total_units: int = 2, price: int = 500) -> dict[str, Any]:
    def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = api.post(path, json=body)
        assert answer.status_code in (200, 201), answer.text
        result: dict[str, Any] = answer.json()
        return result

    product = made(
        "/products",
        {
            "sku": f"PAY-{secrets.token_hex(4)}",
            "name": "P",
            "price": {"amount": price, "currency": "EUR"},
        },
    )["id"]
    location = made("/locations", {"code": f"P{secrets.token_hex(3)}", "name": "P"})["id"]
    customer = made("/customers", {"email": f"p{secrets.token_hex(4)}@example.com", "name": "P"})[
        "id"
    ]
    made("/inventory/receipts", {"productId": product, "locationId": location, "quantity": 10})
    return made(
        "/orders",
        {
            "customerId": customer,
            "locationId": location,
            "shippingAddress": "x",
            "items": [{"productId": product, "quantity": total_units}],
        },
    )


def _eventually(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_manual_payment_confirms_the_order_and_cancelling_refunds_it(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    with httpx.Client(base_url=f"{api_url}/api/v1", headers=admin_headers, timeout=30) as api:
        order = _order(api)
        started = api.post(f"/checkout/{order['id']}", json={"method": "cash"})
        assert started.status_code == 201, started.text
        payment = started.json()
        assert payment["amount"] == order["total"]
        assert payment["status"] == "pending"
        again = api.post(f"/checkout/{order['id']}", json={"method": "cash"})
        assert again.status_code == 409  # nothing left to pay
        confirmed = api.post(f"/checkout/{order['id']}/confirm")
        assert confirmed.json()["status"] == "authorized"
        captured = api.post(f"/payments/{payment['id']}/capture")
        assert captured.status_code == 200, captured.text
        assert captured.json()["captured"] == order["total"]
        too_much = api.post(
            f"/payments/{payment['id']}/capture", json={"amount": {"amount": 1, "currency": "EUR"}}
        )
        assert too_much.status_code == 409

        def order_is(payment_status: str, status: str) -> bool:
            current = api.get(f"/orders/{order['id']}").json()
            if "paymentStatus" not in current:  # not projected yet
                return False
            return bool(current["paymentStatus"] == payment_status and current["status"] == status)

        _eventually(lambda: order_is("paid", "confirmed"), "the process manager settles the order")
        cancelled = api.patch(f"/orders/{order['id']}/status", json={"status": "cancelled"})
        assert cancelled.status_code == 200, cancelled.text

        def refunded() -> bool:
            current = api.get("/payments", params={"orderId": order["id"]}).json()["items"]
            return bool(current and current[0]["status"] == "refunded")

        _eventually(refunded, "the cancelled order's money is refunded")
        _eventually(lambda: order_is("refunded", "cancelled"), "the order shows the refund")


def test_racing_refunds_never_exceed_what_was_captured(
    api_url: str, admin_headers: dict[str, str], store: EventStore, workers: None
) -> None:
    with httpx.Client(base_url=f"{api_url}/api/v1", headers=admin_headers, timeout=30) as api:
        order = _order(api, total_units=2, price=500)
        payment = api.post(f"/checkout/{order['id']}", json={"method": "cash"}).json()
        api.post(f"/checkout/{order['id']}/confirm")
        api.post(f"/payments/{payment['id']}/capture")
        share = order["total"]["amount"] * 7 // 10
        body = {"amount": {"amount": share, "currency": "EUR"}, "reason": "race"}
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(
                    lambda _: api.post(f"/payments/{payment['id']}/refund", json=body), range(4)
                )
            )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409, 409, 409], [a.text for a in answers]
    final: Payment = store.app.repository.get(UUID(payment["id"]))
    assert final.refunded.amount == share <= final.captured.amount


@pytest.fixture
def stripe_api(settings: Settings, admin: None) -> Iterator[tuple[str, FakeStripe]]:
    """An API process whose Stripe adapter talks to a local fake of Stripe."""
    with fake_stripe("sk_test_e2e") as (base, state):
        port = free_port()
        env = {
            "PMS_PORT": str(port),
            "PMS_STRIPE_API_KEY": "sk_test_e2e",
            "PMS_STRIPE_API_BASE": base,
            "PMS_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        process = PmsProcess("api", settings, env=env).start()
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_api(url, process)
            yield url, state
        finally:
            process.stop()


def _webhook(url: str, event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> httpx.Response:
    body = json.dumps(event).encode()
    header = sign(body, secret, int(time.time()))
    return httpx.post(
        f"{url}/api/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "content-type": "application/json"},
    )


def test_stripe_payment_with_webhooks_in_any_order_applied_once(
    stripe_api: tuple[str, FakeStripe], settings: Settings, store: EventStore, workers: None
) -> None:
    url, stripe = stripe_api
    headers = login(url, settings.admin_email, settings.admin_password)
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30) as api:
        order = _order(api)
        started = api.post(
            f"/checkout/{order['id']}", json={"method": "card", "provider": "stripe"}
        )
        assert started.status_code == 201, started.text
        payment = started.json()
        intent = stripe.intents[payment["providerReference"]]
        assert intent["amount"] == order["total"]["amount"]
        assert intent["metadata"]["order_id"] == order["id"]
        assert payment["clientSecret"] == intent["client_secret"]
        assert api.post(f"/checkout/{order['id']}/confirm").json()["status"] == "authorized"
        amount = order["total"]["amount"]
        captured = api.post(f"/payments/{payment['id']}/capture")
        assert captured.status_code == 200, captured.text
        assert captured.json()["captured"]["amount"] == amount
        intent = stripe.intents[payment["providerReference"]]
        assert intent["amount_received"] == amount
        succeeded = {
            "id": "evt_succeeded",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    **intent,
                    "status": "succeeded",
                    "amount_received": amount,
                    "amount_capturable": 0,
                }
            },
        }
        processing = {
            "id": "evt_processing",
            "type": "payment_intent.processing",
            "data": {"object": {**intent, "status": "processing"}},
        }
        before: int = store.app.repository.get(UUID(payment["id"])).version
        forged = _webhook(url, succeeded, secret="whsec_wrong")
        assert forged.status_code == 400
        assert forged.json()["type"] == "/problems/invalid-signature"
        assert store.app.repository.get(UUID(payment["id"])).version == before  # nothing stored
        for event in (succeeded, processing, succeeded):
            answer = _webhook(url, event)
            assert answer.status_code == 200, answer.text
        events = api.get(f"/audit/streams/{payment['id']}/events").json()["items"]
        captures = [e for e in events if e["type"] == "Payment.Captured"]
        assert len(captures) == 1
        assert captures[0]["data"]["amount"]["amount"] == amount
        refund = api.post(
            f"/payments/{payment['id']}/refund",
            json={"amount": {"amount": 100, "currency": "EUR"}, "reason": "scratch"},
        )
        assert refund.status_code == 200, refund.text
        [stripe_refund] = stripe.refunds.values()
        charge = {
            "id": "evt_refunded",
            "type": "charge.refunded",
            "data": {
                "object": {
                    "payment_intent": intent["id"],
                    "metadata": intent["metadata"],
                    "refunds": {"data": [stripe_refund]},
                }
            },
        }
        assert _webhook(url, charge).status_code == 200
        events = api.get(f"/audit/streams/{payment['id']}/events").json()["items"]
        assert len([e for e in events if e["type"] == "Payment.Refunded"]) == 1
