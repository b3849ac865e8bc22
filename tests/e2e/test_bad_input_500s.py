"""Bad input gets a problem+json 4xx, never a 500: crafted cursors, bodies that are not UTF-8,
naive or odd audit filters, dates at the ends of the calendar, odd Stripe-Signature timestamps,
websocket topics that are not ids, and idempotent answers a retry must be free to change."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import httpx
import pytest
import redis.asyncio as aioredis
import websockets
from litestar import Litestar, post
from litestar.testing import AsyncTestClient

from api.errors import EXCEPTION_HANDLERS
from api.idempotency import idempotency_middleware
from application.settings import Settings
from application.store import ConcurrencyConflict
from domain.errors import IllegalTransition
from projections.customer_queries import CUSTOMER_SORTS
from projections.order_queries import ORDER_SORTS
from projections.paging import COLUMN_KINDS
from projections.product_queries import PRODUCT_SORTS
from projections.report_queries import KEY_KINDS
from projections.reports import REPORTS
from projections.stock_queries import MOVE_SORTS
from projections.user_queries import API_KEY_SORTS, USER_SORTS

UUID_TEXT = "00000000-0000-0000-0000-000000000001"
MONEY = {"amount": 100, "currency": "EUR"}
SORTS = {
    "/products": PRODUCT_SORTS,
    "/orders": ORDER_SORTS,
    "/customers": CUSTOMER_SORTS,
    "/users": USER_SORTS,
    "/api-keys": API_KEY_SORTS,
    "/inventory/moves": MOVE_SORTS,
}


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _assert_problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = answer.json()
    assert problem["type"] == f"/problems/{code}", problem
    assert problem["status"] == status
    return problem


NAIVE = "2024-01-01T00:00:00"
# Each list with its default sort, a well-typed (sort value, tie-breaker) and ill-typed values.
LISTS: dict[str, tuple[str, Any, Any, list[Any]]] = {
    "/products": ("createdAt", "2024-01-01T00:00:00Z", UUID_TEXT, ["garbage", NAIVE, 5]),
    "/orders": ("-placedAt", "2024-01-01T00:00:00+02:00", UUID_TEXT, ["2024-13-01T00:00Z", 0]),
    "/customers": ("name", "Amy", UUID_TEXT, [5, True, "\ud800"]),
    "/users": ("createdAt", "2024-01-01T00:00:00Z", UUID_TEXT, ["", NAIVE]),
    "/api-keys": ("createdAt", "2024-01-01T00:00:00Z", UUID_TEXT, ["garbage", 1.5]),
    "/inventory/moves": ("position", 1, "1", ["1x", 1.5, 2**63, -(2**63) - 1, "x"]),
}


def _crafted(sort: str, value: Any, tiebreak: Any, wrong: list[Any]) -> dict[str, str]:
    return {
        "object": _cursor({"a": 1}),
        "empty list": _cursor([]),
        "another sort": _cursor(["-" + sort, value, tiebreak]),
        **{f"wrong value {bad!r}": _cursor([sort, bad, tiebreak]) for bad in wrong},
        "bad tie-breaker": _cursor([sort, value, "not-a-uuid-or-number"]),
        "tie-breaker in other digits": _cursor([sort, value, "\u0661"]),
        "nested object": _cursor([sort, {"a": 1}, tiebreak]),
        "nested list": _cursor([sort, value, [tiebreak]]),
        "null value": _cursor([sort, None, tiebreak]),
        "NUL character": _cursor([sort, "a\u0000", tiebreak]),
        "NUL in the tie-breaker": _cursor([sort, value, "1\u0000"]),
        "lone surrogate": _cursor([sort, value, "\ud800"]),
        "too long": _cursor([sort, value, tiebreak, "more"]),
        "huge number": _cursor([sort, 10**30, tiebreak]),
        "deeply nested": _raw_cursor(f'["{sort}",{"[" * 5000}{"]" * 5000},"{tiebreak}"]'),
    }


@pytest.mark.parametrize("path", list(LISTS))
def test_crafted_list_cursors_are_refused(
    api_url: str, admin_headers: dict[str, str], path: str
) -> None:
    sort, value, tiebreak, wrong = LISTS[path]
    for name, cursor in _crafted(sort, value, tiebreak, wrong).items():
        answer = httpx.get(
            f"{api_url}/api/v1{path}", params={"cursor": cursor}, headers=admin_headers
        )
        assert answer.status_code == 422, (path, name, answer.text)
        problem = _assert_problem(answer, 422, "invalid-value")
        assert problem["errors"][0]["field"] == "cursor", (path, name)


def test_a_well_typed_cursor_is_accepted(api_url: str, admin_headers: dict[str, str]) -> None:
    for path, (sort, value, tiebreak, _) in LISTS.items():
        cursor = _cursor([sort, value, tiebreak])
        answer = httpx.get(
            f"{api_url}/api/v1{path}", params={"cursor": cursor}, headers=admin_headers
        )
        assert answer.status_code == 200, (path, answer.text)


def test_every_sort_order_of_every_list_pages_on(
    api_url: str, admin_headers: dict[str, str], workers: None
) -> None:
    api = f"{api_url}/api/v1"

    def made(path: str, body: dict[str, Any]) -> httpx.Response:
        answer = httpx.post(f"{api}{path}", json=body, headers=admin_headers, timeout=30)
        assert answer.status_code in (200, 201), answer.text
        return answer

    products = [
        made(
            "/products",
            {"sku": f"CUR-{n}-{secrets.token_hex(4)}", "name": f"Cursor {n}", "price": MONEY},
        ).json()["id"]
        for n in range(2)
    ]
    location = made("/locations", {"code": f"C{secrets.token_hex(3)}", "name": "C"}).json()["id"]
    customer = made(
        "/customers", {"email": f"cur-{secrets.token_hex(4)}@example.com", "name": "Cursor"}
    ).json()["id"]
    made("/api-keys", {"name": "cursor", "role": "viewer"})
    for product in products:
        made("/inventory/receipts", {"productId": product, "locationId": location, "quantity": 5})
    last = made(
        "/orders",
        {
            "customerId": customer,
            "locationId": location,
            "shippingAddress": "1 Cursor St",
            "items": [{"productId": products[0], "quantity": 1}],
        },
    )
    fresh = {**admin_headers, "X-PMS-Min-Position": last.headers["X-PMS-Position"]}
    for path, sorts in SORTS.items():
        for field in sorts:
            for sort in (field, f"-{field}"):
                params: dict[str, Any] = {"sort": sort, "limit": 1}
                first = httpx.get(f"{api}{path}", params=params, headers=fresh)
                assert first.status_code == 200, (path, sort, first.text)
                assert first.json()["nextCursor"] is not None, (path, sort)
                params["cursor"] = first.json()["nextCursor"]
                second = httpx.get(f"{api}{path}", params=params, headers=fresh)
                assert second.status_code == 200, (path, sort, second.text)
                assert second.json()["items"] != first.json()["items"], (path, sort)
    for name in REPORTS:
        first = httpx.get(f"{api}/reports/{name}", params={"limit": 1}, headers=fresh)
        assert first.status_code == 200, (name, first.text)
        if first.json()["nextCursor"] is None:  # one row only (one product sold)
            continue
        params = {"limit": 1, "cursor": first.json()["nextCursor"]}
        second = httpx.get(f"{api}/reports/{name}", params=params, headers=fresh)
        assert second.status_code == 200, (name, second.text)
        assert second.json()["items"] != first.json()["items"], name


def test_every_sort_and_report_key_has_a_kind() -> None:
    for sorts in SORTS.values():
        for column in sorts.values():
            assert column in COLUMN_KINDS, column
    for report in REPORTS.values():
        assert len(KEY_KINDS[report.name]) == len(report.keys), report.name


@pytest.mark.parametrize(
    ("report", "keys"),
    [
        ("stock-ledger", ["abc"]),  # a bigint key
        ("stock-ledger", [1.5]),
        ("stock-balance", [1, 2, 3]),  # text keys
        ("stock-balance", ["a", {"b": 1}, "c"]),
        ("stock-balance", ["a", "b\u0000", "c"]),
        ("sales-by-product", ["a", None]),
        ("top-products", ["1x"]),
    ],
)
def test_crafted_report_cursors_are_refused(
    api_url: str, admin_headers: dict[str, str], report: str, keys: list[Any]
) -> None:
    answer = httpx.get(
        f"{api_url}/api/v1/reports/{report}",
        params={"cursor": _cursor([report, *keys])},
        headers=admin_headers,
    )
    _assert_problem(answer, 422, "invalid-value")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/products"),
        ("POST", "/customers"),
        ("PATCH", f"/products/{UUID_TEXT}"),
        ("PUT", "/settings"),
        ("POST", "/auth/login"),
    ],
)
def test_a_body_that_is_not_utf8_is_a_bad_request(
    api_url: str, admin_headers: dict[str, str], method: str, path: str
) -> None:
    for body in (b'{"name":"\xff"}', b'{"\xfe":1}', b"\xff"):
        answer = httpx.request(
            method,
            f"{api_url}/api/v1{path}",
            content=body,
            headers={**admin_headers, "Content-Type": "application/json"},
        )
        assert 400 <= answer.status_code < 500, (path, body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("path", "name", "good"),
    [
        ("/products", "status", "archived"),
        ("/orders", "status", "cancelled"),
        ("/payments", "status", "captured"),
        ("/returns", "status", "received"),
        ("/users", "role", "viewer"),
    ],
)
def test_list_filters_take_only_the_values_they_can_match(
    api_url: str, admin_headers: dict[str, str], path: str, name: str, good: str
) -> None:
    with httpx.Client(base_url=f"{api_url}/api/v1", headers=admin_headers) as api:
        assert api.get(path, params={name: good}).status_code == 200
        problem = _assert_problem(api.get(path, params={name: "x"}), 400, "validation-error")
        assert name in json.dumps(problem)


@pytest.fixture(scope="module")
def webhook_api(start_api: Callable[..., str]) -> str:
    """An API process that accepts Stripe webhooks."""
    return start_api(stripe_webhook_secret="whsec_bad_input")


def test_stripe_webhooks_refuse_bodies_that_are_not_utf8(webhook_api: str) -> None:
    answer = httpx.post(
        f"{webhook_api}/api/v1/webhooks/stripe",
        content=b'{"id":"evt_\xff"}',
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"},
    )
    _assert_problem(answer, 400, "validation-error")


@pytest.mark.parametrize("timestamp", ["9" * 5000, "\u00b2", "\u00b9\u00b2\u00b3", "+1", "1_000"])
def test_stripe_signature_timestamps_int_cannot_read_are_bad_signatures(
    webhook_api: str, timestamp: str
) -> None:
    answer = httpx.post(
        f"{webhook_api}/api/v1/webhooks/stripe",
        content=b'{"id":"evt_odd_timestamp","type":"payment_intent.succeeded"}',
        headers={
            b"Content-Type": b"application/json",
            # Latin-1, as servers read header bytes: "²" arrives as "²", which isdigit() takes.
            b"Stripe-Signature": f"t={timestamp},v1={'0' * 64}".encode("latin-1"),
        },
    )
    _assert_problem(answer, 400, "invalid-signature")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/audit/events", {"from": "2024-01-01T00:00:00"}),
        ("/audit/events", {"to": "2024-01-01T00:00:00"}),
        ("/audit/streams/{id}/state", {"at": "2024-01-01T00:00:00"}),
    ],
)
def test_audit_times_without_a_timezone_are_refused(
    api_url: str, admin_headers: dict[str, str], path: str, params: dict[str, str]
) -> None:
    product = httpx.post(
        f"{api_url}/api/v1/products",
        json={
            "sku": f"AUD-{secrets.token_hex(4)}",
            "name": "A",
            "price": {"amount": 1, "currency": "EUR"},
        },
        headers=admin_headers,
    ).json()["id"]
    answer = httpx.get(
        f"{api_url}/api/v1{path.format(id=product)}", params=params, headers=admin_headers
    )
    problem = _assert_problem(answer, 422, "invalid-value")
    assert "timezone" in problem["detail"]


def test_audit_times_with_a_timezone_are_accepted(
    api_url: str, admin_headers: dict[str, str]
) -> None:
    answer = httpx.get(
        f"{api_url}/api/v1/audit/events",
        params={"from": "2024-01-01T00:00:00Z", "to": "2999-01-01T00:00:00+02:00", "limit": 1},
        headers=admin_headers,
    )
    assert answer.status_code == 200, answer.text


def test_audit_event_types_are_matched_literally(
    api_url: str, admin_headers: dict[str, str]
) -> None:
    api = f"{api_url}/api/v1"
    for odd in ("\\", "Product.Created\\", "%", "_", "Product_Created", "Product.%"):
        answer = httpx.get(f"{api}/audit/events", params={"type": odd}, headers=admin_headers)
        assert answer.status_code == 200, (odd, answer.text)
        assert answer.json()["items"] == [], odd
    found = httpx.get(
        f"{api}/audit/events", params={"type": "Product.Created", "limit": 5}, headers=admin_headers
    )
    assert found.status_code == 200
    assert {event["type"] for event in found.json()["items"]} <= {"Product.Created"}


def test_dashboard_periods_before_the_calendar_starts_are_refused(
    api_url: str, admin_headers: dict[str, str]
) -> None:
    for params in (
        {"startDate": "0001-01-01", "endDate": "0001-01-01"},
        {"startDate": "0001-01-01", "endDate": "0001-03-01"},
        {"endDate": "0001-01-10"},
    ):
        answer = httpx.get(
            f"{api_url}/api/v1/dashboard/metrics", params=params, headers=admin_headers
        )
        _assert_problem(answer, 422, "invalid-value")
    late = httpx.get(
        f"{api_url}/api/v1/dashboard/metrics",
        params={"startDate": "9999-12-01", "endDate": "9999-12-31"},
        headers=admin_headers,
    )
    assert late.status_code == 200, late.text


@pytest.mark.parametrize(
    ("start", "end", "group_by", "periods"),
    [
        ("9999-12-01", "9999-12-31", "month", ["9999-12"]),
        ("9999-11-15", "9999-12-31", "month", ["9999-11", "9999-12"]),
        ("9999-12-27", "9999-12-31", "week", ["9999-W52"]),
        ("9999-12-30", "9999-12-31", "day", ["9999-12-30", "9999-12-31"]),
        ("0001-01-01", "0001-01-02", "week", ["1-W01"]),
    ],
)
def test_sales_analytics_reach_the_ends_of_the_calendar(
    api_url: str,
    admin_headers: dict[str, str],
    start: str,
    end: str,
    group_by: str,
    periods: list[str],
) -> None:
    answer = httpx.get(
        f"{api_url}/api/v1/analytics/sales",
        params={"startDate": start, "endDate": end, "groupBy": group_by},
        headers=admin_headers,
    )
    assert answer.status_code == 200, answer.text
    buckets = answer.json()["buckets"]
    assert [bucket["period"] for bucket in buckets] == periods
    assert buckets[-1]["end"] == end


@pytest.mark.parametrize(
    "topic",
    [
        "inventory:a b",
        "inventory:a\r\nPUB x 1\r\n",
        "orders:a\tb",
        "inventory:not-a-uuid",
        f"inventory:{UUID_TEXT}\r\n",
        "inventory:**",
        "alerts:*",
    ],
)
async def test_websocket_topics_that_are_not_ids_are_refused(
    api_url: str, admin_headers: dict[str, str], workers: None, topic: str
) -> None:
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    url = api_url.replace("http", "ws") + f"/api/v1/ws?token={token}"
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "subscribe", "topic": topic, "since": 0}))
        refused = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert refused["type"] == "error", refused
        assert "topic" in refused["message"]
        await socket.send(json.dumps({"type": "ping"}))  # the socket is still usable
        assert json.loads(await asyncio.wait_for(socket.recv(), 5)) == {"type": "pong"}
        upper = f"inventory:{uuid4()}".upper().replace("INVENTORY", "inventory")
        await socket.send(json.dumps({"type": "subscribe", "topic": upper, "since": 0}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert ack["type"] == "subscribed", ack


async def test_retryable_answers_are_not_remembered_for_an_idempotency_key(
    settings: Settings,
) -> None:
    answers: list[int] = []

    @post("/api/v1/things", status_code=201)
    async def make_thing() -> dict[str, int]:
        answers.append(len(answers))
        if len(answers) == 1:
            raise ConcurrencyConflict("too many concurrent changes to the same records; try again")
        if len(answers) == 3:
            raise IllegalTransition("the thing cannot be made twice")
        return {"attempt": len(answers)}

    async def open_services(app: Litestar) -> None:
        redis = aioredis.Redis.from_url(settings.redis_url)  # in the app's event loop
        app.state.services = SimpleNamespace(settings=settings, redis=redis)

    async def close_services(app: Litestar) -> None:
        await app.state.services.redis.aclose()

    app = Litestar(
        route_handlers=[make_thing],
        middleware=[idempotency_middleware],
        exception_handlers=EXCEPTION_HANDLERS,
        on_startup=[open_services],
        on_shutdown=[close_services],
    )
    async with AsyncTestClient(app) as client:
        key = {"Idempotency-Key": f"retry-{uuid4()}"}
        conflict = await client.post("/api/v1/things", json={"a": 1}, headers=key)
        assert conflict.status_code == 409
        assert conflict.headers["retry-after"] == "1"
        retried = await client.post("/api/v1/things", json={"a": 1}, headers=key)
        assert retried.status_code == 201, retried.text
        assert retried.json() == {"attempt": 2}
        again = await client.post("/api/v1/things", json={"a": 1}, headers=key)
        assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
        # A conflict that retrying cannot change is the answer, and is remembered.
        other = {"Idempotency-Key": f"final-{uuid4()}"}
        final = await client.post("/api/v1/things", json={"a": 1}, headers=other)
        assert final.status_code == 409
        repeat = await client.post("/api/v1/things", json={"a": 1}, headers=other)
        assert (repeat.status_code, repeat.headers["idempotent-replayed"]) == (409, "true")
        assert len(answers) == 3
