"""Money rules over HTTP: a cancelled order keeps no money, a refund is checked before Stripe
makes it, payments never capture more than the order owes, and credit counts as payment.

Each test drives the payments process manager itself (`Shop.run_process_manager`), on a database
of this module's own with an API process whose Stripe adapter talks to a local fake of Stripe, so
the order in which reactions and requests happen is the test's to choose.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from eventsourcing.utils import get_topic
from fake_stripe import FakeStripe, fake_stripe
from support import login

from application.settings import Settings
from application.store import EventStore
from application.stripe import StripeGateway, sign
from domain.orders import Order
from domain.payments import Payment
from workers import process_managers

WEBHOOK_SECRET = "whsec_money_rules"
API_KEY = "sk_test_money_rules"


@dataclass
class Shop:
    """An API with Stripe, the store behind it, and the process manager run on demand."""

    url: str
    api: httpx.Client
    stripe: FakeStripe
    store: EventStore
    settings: Settings
    gateway: StripeGateway
    position: int = 0

    def ok(self, answer: httpx.Response) -> dict[str, Any]:
        """The JSON body of a successful answer."""
        assert answer.status_code in (200, 201), answer.text
        body: dict[str, Any] = answer.json()
        return body

    def product(self, price: int) -> str:
        """A new product at `price` EUR cents."""
        body = {
            "sku": f"MR-{secrets.token_hex(4)}",
            "name": "M",
            "price": {"amount": price, "currency": "EUR"},
        }
        return str(self.ok(self.api.post("/products", json=body))["id"])

    def order(self, *lines: tuple[str, int], stocked: tuple[str, ...] = ()) -> dict[str, Any]:
        """A placed order of (product, quantity) lines at a new location that has these
        products and the `stocked` ones in stock."""
        where = self.ok(
            self.api.post("/locations", json={"code": f"M{secrets.token_hex(3)}", "name": "M"})
        )["id"]
        customer = {"email": f"m{secrets.token_hex(4)}@example.com", "name": "M"}
        who = self.ok(self.api.post("/customers", json=customer))["id"]
        for product in [p for p, _ in lines] + list(stocked):
            receipt = {"productId": product, "locationId": where, "quantity": 10}
            self.ok(self.api.post("/inventory/receipts", json=receipt))
        body = {
            "customerId": who,
            "locationId": where,
            "shippingAddress": "x",
            "items": [{"productId": p, "quantity": q} for p, q in lines],
        }
        return self.ok(self.api.post("/orders", json=body))

    def paid_by(self, order_id: str, provider: str = "manual") -> dict[str, Any]:
        """Check out and confirm: an authorized payment of all the order owes."""
        method = "card" if provider == "stripe" else "cash"
        started = self.api.post(
            f"/checkout/{order_id}", json={"method": method, "provider": provider}
        )
        payment = self.ok(started)
        assert self.ok(self.api.post(f"/checkout/{order_id}/confirm"))["status"] == "authorized"
        return payment

    def cancel(self, order_id: str) -> None:
        """Cancel the order over HTTP."""
        self.ok(self.api.patch(f"/orders/{order_id}/status", json={"status": "cancelled"}))

    def payment(self, payment_id: str) -> Payment:
        """The payment as the store has it."""
        found: Payment = self.store.app.repository.get(UUID(payment_id))
        return found

    def stored_order(self, order_id: str) -> Order:
        """The order as the store has it."""
        found: Order = self.store.app.repository.get(UUID(order_id))
        return found

    def run_process_manager(self) -> None:
        """React to every event stored so far, as the worker's process manager does."""
        while True:
            reached = process_managers.run_once(
                self.store, self.settings.database_url, self.position, self.gateway
            )
            if reached == self.position:
                return
            self.position = reached

    def react_to(self, kind: type[Any], aggregate_id: str) -> None:
        """The process manager's reaction to the newest `kind` event of one aggregate only."""
        page = self.store.app.recorder.select_notifications(
            start=self.position, limit=1000, topics=[get_topic(kind)], inclusive_of_start=False
        )
        events = [(n.id, self.store.app.mapper.to_domain_event(n)) for n in page]
        position, event = [(i, e) for i, e in events if str(e.originator_id) == aggregate_id][-1]
        process_managers.react(self.store, event, position, self.gateway)

    def webhook(self, event: dict[str, Any]) -> httpx.Response:
        """Deliver a signed Stripe event."""
        body = json.dumps(event).encode()
        header = sign(body, WEBHOOK_SECRET, int(time.time()))
        return httpx.post(
            f"{self.url}/api/v1/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": header, "content-type": "application/json"},
        )

    def refunds_of(self, payment: dict[str, Any]) -> list[dict[str, Any]]:
        """Refunds Stripe made on the payment's PaymentIntent."""
        intent = payment["providerReference"]
        return [r for r in self.stripe.refunds.values() if r["payment_intent"] == intent]


@pytest.fixture(scope="module")
def shop(fresh_settings: Callable[[], Settings], start_api: Callable[..., str]) -> Iterator[Shop]:
    """A database of its own, an API process with Stripe (faked), no workers."""
    with fake_stripe(API_KEY) as (base, stripe):
        settings = fresh_settings().with_changes(
            stripe_api_key=API_KEY,
            stripe_api_base=base,
            stripe_webhook_secret=WEBHOOK_SECRET,
        )
        with psycopg.connect(settings.database_url, autocommit=True) as connection:
            connection.execute(process_managers.DDL)
        url = start_api(base=settings)
        headers = login(url, settings.admin_email, settings.admin_password)
        store = EventStore.connect(settings)
        gateway = StripeGateway(API_KEY, base)
        try:
            with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30) as api:
                shop = Shop(url, api, stripe, store, settings, gateway)
                shop.run_process_manager()  # what came before the tests (the first admin)
                yield shop
        finally:
            gateway.close()
            store.close()


def _problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    return body


def test_a_cancelled_orders_payment_is_voided_and_cannot_be_captured(shop: Shop) -> None:
    order = shop.order((shop.product(500), 2))
    payment = shop.paid_by(order["id"])
    shop.cancel(order["id"])

    refused = _problem(shop.api.post(f"/payments/{payment['id']}/capture"), 409)
    assert "cancelled order" in refused["detail"]
    shop.run_process_manager()
    assert shop.payment(payment["id"]).status == "voided"
    assert shop.payment(payment["id"]).captured.amount == 0
    _problem(shop.api.post(f"/payments/{payment['id']}/capture"), 409)


def test_cancelling_an_order_voids_its_stripe_authorization_at_stripe(shop: Shop) -> None:
    order = shop.order((shop.product(500), 2))
    payment = shop.paid_by(order["id"], provider="stripe")
    shop.cancel(order["id"])

    refused = _problem(shop.api.post(f"/payments/{payment['id']}/capture"), 409)
    assert "cancelled order" in refused["detail"]
    intent = payment["providerReference"]
    assert not any(path.endswith(f"{intent}/capture") for path, _ in shop.stripe.requests)
    shop.run_process_manager()
    assert shop.payment(payment["id"]).status == "voided"
    assert shop.stripe.intents[intent]["status"] == "canceled"
    assert shop.refunds_of(payment) == []


def test_a_capture_arriving_after_the_cancellation_is_refunded_once(shop: Shop) -> None:
    order = shop.order((shop.product(500), 2))
    payment = shop.paid_by(order["id"], provider="stripe")
    intent = payment["providerReference"]
    # Captured at Stripe (say from its dashboard) while the order is being cancelled; the news
    # arrives after the cancellation, when its own reaction found nothing captured to refund.
    shop.stripe.handle(f"/v1/payment_intents/{intent}/capture", {}, None)
    shop.cancel(order["id"])
    succeeded = {
        "id": f"evt_{secrets.token_hex(6)}",
        "type": "payment_intent.succeeded",
        "data": {"object": dict(shop.stripe.intents[intent])},
    }
    assert shop.webhook(succeeded).status_code == 200
    assert shop.payment(payment["id"]).captured.amount == order["total"]["amount"]

    shop.react_to(Payment.Captured, payment["id"])
    assert shop.payment(payment["id"]).status == "refunded"
    assert [r["amount"] for r in shop.refunds_of(payment)] == [order["total"]["amount"]]
    shop.run_process_manager()  # every reaction again, the cancellation's own included
    assert len(shop.refunds_of(payment)) == 1
    assert len(shop.payment(payment["id"]).refunds) == 1


def test_a_refund_the_payment_would_refuse_never_reaches_stripe(shop: Shop) -> None:
    order = shop.order((shop.product(500), 2))
    payment = shop.paid_by(order["id"], provider="stripe")
    shop.ok(shop.api.post(f"/payments/{payment['id']}/capture"))
    refund = f"/payments/{payment['id']}/refund"
    total = order["total"]["amount"]

    wrong_currency = {"amount": {"amount": 100, "currency": "USD"}, "reason": "scratch"}
    _problem(shop.api.post(refund, json=wrong_currency), 422)
    no_reason = {"amount": {"amount": 100, "currency": "EUR"}, "reason": "   "}
    _problem(shop.api.post(refund, json=no_reason), 422)
    too_much = {"amount": {"amount": total + 1, "currency": "EUR"}, "reason": "scratch"}
    _problem(shop.api.post(refund, json=too_much), 409)
    assert shop.refunds_of(payment) == []

    good = {"amount": {"amount": 100, "currency": "EUR"}, "reason": "scratch"}
    assert shop.ok(shop.api.post(refund, json=good))["refunded"]["amount"] == 100
    assert [r["amount"] for r in shop.refunds_of(payment)] == [100]


def test_a_second_checkout_is_only_for_what_no_payment_can_still_capture(shop: Shop) -> None:
    order = shop.order((shop.product(500), 2))
    total = order["total"]["amount"]
    payment = shop.paid_by(order["id"])
    half = {"amount": {"amount": total // 2, "currency": "EUR"}}
    shop.ok(shop.api.post(f"/payments/{payment['id']}/capture", json=half))

    _problem(shop.api.post(f"/checkout/{order['id']}", json={"method": "cash"}), 409)
    rest = shop.ok(shop.api.post(f"/payments/{payment['id']}/capture"))
    assert rest["captured"]["amount"] == total
    shop.run_process_manager()
    stored = shop.stored_order(order["id"])
    assert (stored.payment_status, stored.status) == ("paid", "confirmed")


def test_the_rest_a_partial_stripe_capture_released_can_be_paid_again(shop: Shop) -> None:
    order = shop.order((shop.product(500), 2))
    total = order["total"]["amount"]
    first = shop.paid_by(order["id"], provider="stripe")
    part = {"amount": {"amount": total - 300, "currency": "EUR"}}
    shop.ok(shop.api.post(f"/payments/{first['id']}/capture", json=part))
    _problem(shop.api.post(f"/payments/{first['id']}/capture"), 409)  # Stripe captures once

    second = shop.paid_by(order["id"])
    assert second["amount"]["amount"] == 300
    shop.ok(shop.api.post(f"/payments/{second['id']}/capture"))
    shop.run_process_manager()
    assert shop.stored_order(order["id"]).payment_status == "paid"


def _exchanged(shop: Shop, *replacement: tuple[str, int]) -> str:
    """A paid, shipped order of one 2000 shirt, returned and exchanged for `replacement`."""
    shirt = shop.product(2000)
    order = shop.order((shirt, 1), stocked=tuple(p for p, _ in replacement))
    payment = shop.paid_by(order["id"])
    shop.ok(shop.api.post(f"/payments/{payment['id']}/capture"))
    shop.run_process_manager()  # paid, so confirmed
    shipment = {"carrier": "", "trackingNumber": ""}
    shop.ok(shop.api.post(f"/orders/{order['id']}/shipments", json=shipment))
    location = str(shop.stored_order(order["id"]).location_id)
    line = {"productId": shirt, "quantity": 1, "reason": "size", "condition": "sellable"}
    rma = shop.ok(
        shop.api.post(
            "/returns",
            json={
                "orderId": order["id"],
                "locationId": location,
                "resolution": "exchange",
                "items": [line],
            },
        )
    )
    shop.ok(shop.api.post(f"/returns/{rma['id']}/approve"))
    shop.ok(shop.api.post(f"/returns/{rma['id']}/receive"))
    items = [{"productId": p, "quantity": q} for p, q in replacement]
    exchanged = shop.ok(shop.api.post(f"/returns/{rma['id']}/exchange", json={"items": items}))
    return str(exchanged["replacementOrderId"])


def test_a_replacement_order_its_credit_covers_is_paid_and_confirmed(shop: Shop) -> None:
    replacement = _exchanged(shop, (shop.product(500), 2))
    stored = shop.stored_order(replacement)
    assert stored.credit == stored.total
    shop.run_process_manager()
    stored = shop.stored_order(replacement)
    assert (stored.payment_status, stored.status) == ("paid", "confirmed")


def test_a_replacement_order_is_paid_once_the_rest_after_credit_is_captured(
    shop: Shop,
) -> None:
    replacement = _exchanged(shop, (shop.product(2000), 1), (shop.product(500), 1))
    stored = shop.stored_order(replacement)
    payment = shop.paid_by(replacement)
    assert payment["amount"] == {
        "amount": stored.total.amount - stored.credit.amount,
        "currency": "EUR",
    }
    shop.ok(shop.api.post(f"/payments/{payment['id']}/capture"))
    shop.run_process_manager()
    stored = shop.stored_order(replacement)
    assert (stored.payment_status, stored.status) == ("paid", "confirmed")


def test_a_refund_stripe_refuses_does_not_hold_up_the_reactions_after_it(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    shop.run_process_manager()
    order = shop.order((shop.product(500), 2))
    payment = shop.paid_by(order["id"], provider="stripe")
    shop.ok(shop.api.post(f"/payments/{payment['id']}/capture"))
    intent = payment["providerReference"]
    # Refunded in Stripe's dashboard: Stripe will refuse our refund of the cancellation (400).
    total = order["total"]["amount"]
    shop.stripe.refunds["re_dashboard"] = {"amount": total, "payment_intent": intent}
    shop.cancel(order["id"])
    later = shop.order((shop.product(700), 1))
    shop.ok(shop.api.post(f"/payments/{shop.paid_by(later['id'])['id']}/capture"))

    shop.run_process_manager()  # before: ProviderError, raised again on every attempt
    assert "Stripe answered 400" in caplog.text
    assert shop.stored_order(later["id"]).payment_status == "paid"  # reactions went on


def test_one_refused_refund_does_not_keep_a_cancelled_orders_other_payments(shop: Shop) -> None:
    shop.run_process_manager()
    order = shop.order((shop.product(500), 2))
    first = shop.paid_by(order["id"], provider="stripe")
    half = {"amount": {"amount": 500, "currency": "EUR"}}
    shop.ok(shop.api.post(f"/payments/{first['id']}/capture", json=half))  # Stripe frees the rest
    second = shop.paid_by(order["id"], provider="stripe")
    shop.ok(shop.api.post(f"/payments/{second['id']}/capture"))
    # The first was refunded in Stripe's dashboard: Stripe refuses our refund of it.
    intent = first["providerReference"]
    shop.stripe.refunds["re_dashboard_first"] = {"amount": 500, "payment_intent": intent}
    shop.cancel(order["id"])

    shop.run_process_manager()
    assert [r["amount"] for r in shop.refunds_of(second)] == [second["amount"]["amount"]]
    assert shop.payment(second["id"]).status == "refunded"
