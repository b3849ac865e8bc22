"""The whole money path over HTTP: place, pay, capture, ship, return, receive, refund."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx

from application.store import EventStore
from domain.inventory import StockItem
from domain.orders import Order
from domain.payments import Payment


def _eventually(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_place_pay_ship_return_receive_refund_all_agree_with_the_store(
    api_url: str, admin_headers: dict[str, str], store: EventStore, workers: None
) -> None:
    with httpx.Client(base_url=f"{api_url}/api/v1", headers=admin_headers, timeout=30) as api:

        def ok(answer: httpx.Response) -> dict[str, Any]:
            assert answer.status_code in (200, 201), answer.text
            body: dict[str, Any] = answer.json()
            return body

        shirt = ok(
            api.post(
                "/products",
                json={
                    "sku": f"R-{secrets.token_hex(4)}",
                    "name": "Shirt",
                    "price": {"amount": 2000, "currency": "EUR"},
                    "cost": {"amount": 800, "currency": "EUR"},
                },
            )
        )["id"]
        mug = ok(
            api.post(
                "/products",
                json={
                    "sku": f"R-{secrets.token_hex(4)}",
                    "name": "Mug",
                    "price": {"amount": 500, "currency": "EUR"},
                },
            )
        )["id"]
        where = ok(api.post("/locations", json={"code": f"R{secrets.token_hex(3)}", "name": "R"}))[
            "id"
        ]
        who = ok(
            api.post(
                "/customers", json={"email": f"r{secrets.token_hex(4)}@example.com", "name": "R"}
            )
        )["id"]
        for product in (shirt, mug):
            ok(
                api.post(
                    "/inventory/receipts",
                    json={"productId": product, "locationId": where, "quantity": 10},
                )
            )
        order = ok(
            api.post(
                "/orders",
                json={
                    "customerId": who,
                    "locationId": where,
                    "shippingAddress": "1 Main St",
                    "items": [
                        {"productId": shirt, "quantity": 3},
                        {"productId": mug, "quantity": 2},
                    ],
                },
            )
        )
        payment = ok(api.post(f"/checkout/{order['id']}", json={"method": "card"}))
        ok(api.post(f"/checkout/{order['id']}/confirm"))
        ok(api.post(f"/payments/{payment['id']}/capture"))
        _eventually(
            lambda: store.app.repository.get(UUID(order["id"])).status == "confirmed",
            "a paid order is confirmed by the process manager",
        )
        ok(api.patch(f"/orders/{order['id']}/status", json={"status": "processing"}))
        ok(
            api.post(
                f"/orders/{order['id']}/shipments", json={"carrier": "DHL", "trackingNumber": "T-1"}
            )
        )
        too_many = api.post(
            "/returns",
            json={
                "orderId": order["id"],
                "locationId": where,
                "resolution": "refund",
                "items": [
                    {"productId": shirt, "quantity": 4, "reason": "size", "condition": "sellable"}
                ],
            },
        )
        assert too_many.status_code == 422, too_many.text
        rma = ok(
            api.post(
                "/returns",
                json={
                    "orderId": order["id"],
                    "locationId": where,
                    "resolution": "refund",
                    "items": [
                        {
                            "productId": shirt,
                            "quantity": 2,
                            "reason": "size",
                            "condition": "sellable",
                        },
                        {
                            "productId": mug,
                            "quantity": 1,
                            "reason": "broken",
                            "condition": "damaged",
                        },
                    ],
                },
            )
        )
        second = api.post(
            "/returns",
            json={
                "orderId": order["id"],
                "locationId": where,
                "resolution": "refund",
                "items": [
                    {"productId": shirt, "quantity": 2, "reason": "again", "condition": "sellable"}
                ],
            },
        )
        assert second.status_code == 422  # only one shirt is left to return
        ok(api.post(f"/returns/{rma['id']}/approve"))
        received = ok(
            api.post(
                f"/returns/{rma['id']}/receive",
                json={"items": [{"productId": shirt, "quantity": 2}]},
            )
        )
        assert received["status"] == "partially_received"
        received = ok(api.post(f"/returns/{rma['id']}/receive"))
        assert received["status"] == "received"

        def refunded() -> bool:
            current = ok(api.get("/returns", params={"orderId": order["id"]}))["items"]
            return bool(current and current[0]["status"] == "closed")

        _eventually(refunded, "the process manager refunds the received units")

    # Every figure agrees with the event store.
    value = 2 * 2000 + 1 * 500  # no tax configured
    paid: Payment = store.app.repository.get(UUID(payment["id"]))
    assert paid.captured.amount == order["total"]["amount"] == 3 * 2000 + 2 * 500
    assert paid.refunded.amount == value
    placed: Order = store.app.repository.get(UUID(order["id"]))
    assert placed.returned == {UUID(shirt): 2, UUID(mug): 1}
    shirts: StockItem = store.app.repository.get(StockItem.create_id(UUID(shirt), UUID(where)))
    mugs: StockItem = store.app.repository.get(StockItem.create_id(UUID(mug), UUID(where)))
    assert (shirts.on_hand, shirts.reserved) == (10 - 3 + 2, 0)
    assert (mugs.on_hand, mugs.reserved) == (10 - 2, 0)  # the damaged mug was written off

    def read_models_agree() -> bool:
        with httpx.Client(base_url=f"{api_url}/api/v1", headers=admin_headers) as api:
            stock = api.get(f"/inventory/stock/{shirt}").json()
            payments = api.get("/payments", params={"orderId": order["id"]}).json()["items"]
            current = api.get(f"/orders/{order['id']}").json()
        return bool(
            stock.get("onHand") == shirts.on_hand
            and payments
            and payments[0]["refunded"]["amount"] == value
            and current.get("paymentStatus") == placed.payment_status == "partially_refunded"
        )

    _eventually(read_models_agree, "stock, payment and order read models match the store")


def test_payment_reconciliation_and_returns_report_match_a_fold_of_the_store(
    api_url: str, admin_headers: dict[str, str], store: EventStore, workers: None
) -> None:
    test_place_pay_ship_return_receive_refund_all_agree_with_the_store(
        api_url, admin_headers, store, workers
    )
    last = store.max_position()
    expected: dict[tuple[str, str], list[int]] = {}
    for notification in store.iter_notifications(0):
        event = store.app.mapper.to_domain_event(notification)
        if isinstance(event, Payment.Captured | Payment.Refunded):
            payment: Payment = store.app.repository.get(event.originator_id)
            key = (event.timestamp.date().isoformat(), payment.provider)
            figures = expected.setdefault(key, [0, 0])
            if isinstance(event, Payment.Captured):
                figures[0] += event.amount.amount
            else:
                figures[1] += event.refund.amount.amount
    days = sorted(day for day, _ in expected)
    fresh = {**admin_headers, "X-PMS-Min-Position": str(last)}
    rows = httpx.get(
        f"{api_url}/api/v1/payments/reconciliation",
        params={"startDate": days[0], "endDate": days[-1]},
        headers=fresh,
    ).json()["items"]
    assert {(r["day"], r["provider"]): [r["captured"], r["refunded"]] for r in rows} == expected
    assert all(r["net"] == r["captured"] - r["refunded"] for r in rows)
    report = httpx.get(f"{api_url}/api/v1/returns/report", headers=fresh).json()["items"]
    assert report
    for row in report:
        assert 0 < row["returned"] <= row["shipped"]
        assert row["rate"] == round(row["returned"] / row["shipped"], 4)
        assert sum(row["reasons"].values()) == row["returned"]


def test_an_exchange_places_a_credited_replacement_and_refunds_the_difference(
    api_url: str, admin_headers: dict[str, str], store: EventStore, workers: None
) -> None:
    with httpx.Client(base_url=f"{api_url}/api/v1", headers=admin_headers, timeout=30) as api:

        def ok(answer: httpx.Response) -> dict[str, Any]:
            assert answer.status_code in (200, 201), answer.text
            body: dict[str, Any] = answer.json()
            return body

        def product(price: int) -> str:
            return str(
                ok(
                    api.post(
                        "/products",
                        json={
                            "sku": f"X-{secrets.token_hex(4)}",
                            "name": "X",
                            "price": {"amount": price, "currency": "EUR"},
                        },
                    )
                )["id"]
            )

        shirt, mug = product(2000), product(500)
        where = ok(api.post("/locations", json={"code": f"X{secrets.token_hex(3)}", "name": "X"}))[
            "id"
        ]
        who = ok(
            api.post(
                "/customers", json={"email": f"x{secrets.token_hex(4)}@example.com", "name": "X"}
            )
        )["id"]
        for item in (shirt, mug):
            ok(
                api.post(
                    "/inventory/receipts",
                    json={"productId": item, "locationId": where, "quantity": 5},
                )
            )
        order = ok(
            api.post(
                "/orders",
                json={
                    "customerId": who,
                    "locationId": where,
                    "shippingAddress": "x",
                    "items": [{"productId": shirt, "quantity": 1}],
                },
            )
        )
        payment = ok(api.post(f"/checkout/{order['id']}", json={"method": "card"}))
        ok(api.post(f"/checkout/{order['id']}/confirm"))
        ok(api.post(f"/payments/{payment['id']}/capture"))
        _eventually(
            lambda: store.app.repository.get(UUID(order["id"])).status == "confirmed",
            "a paid order is confirmed",
        )
        ok(api.post(f"/orders/{order['id']}/shipments", json={"carrier": "", "trackingNumber": ""}))
        rma = ok(
            api.post(
                "/returns",
                json={
                    "orderId": order["id"],
                    "locationId": where,
                    "resolution": "exchange",
                    "items": [
                        {
                            "productId": shirt,
                            "quantity": 1,
                            "reason": "colour",
                            "condition": "sellable",
                        }
                    ],
                },
            )
        )
        ok(api.post(f"/returns/{rma['id']}/approve"))
        ok(api.post(f"/returns/{rma['id']}/receive"))
        exchanged = ok(
            api.post(
                f"/returns/{rma['id']}/exchange",
                json={"items": [{"productId": mug, "quantity": 2}]},
            )
        )
        assert exchanged["status"] == "closed"
        replacement = exchanged["replacementOrderId"]
        nothing_due = api.post(f"/checkout/{replacement}", json={"method": "card"})
        assert nothing_due.status_code == 409  # the returned shirt paid for the mugs

    paid: Payment = store.app.repository.get(UUID(payment["id"]))
    assert paid.refunded.amount == 2000 - 2 * 500  # the difference went back
    new_order: Order = store.app.repository.get(UUID(replacement))
    assert new_order.credit.amount == new_order.total.amount == 1000
    mugs: StockItem = store.app.repository.get(StockItem.create_id(UUID(mug), UUID(where)))
    assert mugs.reserved == 2
