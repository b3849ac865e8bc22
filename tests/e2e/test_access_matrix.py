"""Every route × every kind of caller, generated from the app's own route list.

A route added later is covered without touching this file: the expectation comes from the
permission guards it declares (api.auth.Requires) and from the role matrix of API.md, which
is asserted on its own terms (a viewer writes nothing; an employee never sets prices).
"""

from __future__ import annotations

import re
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.routes import HTTPRoute
from litestar.testing import create_test_client

from api.app import create_app
from api.auth import Requires, declared_access, route_declares_access
from application.permissions import Permission, allows
from application.settings import Settings
from domain.identity import ROLES

NIL_ID = "00000000-0000-0000-0000-000000000000"
_PARAM = re.compile(r"\{(\w+):(\w+)\}")
_PARAM_VALUES = {"uuid": NIL_ID, "int": "1", "str": "x", "path": "x"}


@dataclass(frozen=True)
class Route:
    """One method on one path, and who it says may call it."""

    method: str
    path: str  # with concrete path parameters
    public: bool
    guards: tuple[Requires, ...]

    def allows(self, role: str, kind: str) -> bool:
        """Whether a caller of this role and kind ("user" or "apikey") passes the guards."""
        return all(
            kind == "user" if guard.permission is None else allows(role, guard.permission)
            for guard in self.guards
        )

    @property
    def writes(self) -> bool:
        """Whether the route changes something."""
        return self.method not in ("GET", "HEAD")


def api_routes(app: Litestar) -> list[Route]:
    """Every HTTP route under /api/ with each of its methods (OPTIONS and HEAD aside)."""
    routes = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            continue
        path = _PARAM.sub(lambda m: _PARAM_VALUES[m.group(2)], route.path)
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                public = bool(handler.opt.get("exclude_from_auth"))
                routes.append(Route(method, path, public, tuple(declared_access(handler))))
    return routes


with warnings.catch_warnings():  # Litestar's deprecation notes about inferred parameters
    warnings.simplefilter("ignore", DeprecationWarning)
    ROUTES = api_routes(create_app(Settings(jwt_secret="only-for-the-route-list")))
CALLERS = ["anonymous", *ROLES, *(f"apikey:{role}" for role in ROLES)]


@pytest.fixture(scope="module")
def client(api_url: str) -> Iterator[httpx.Client]:
    """One connection pool for the whole table."""
    with httpx.Client(base_url=api_url, timeout=30) as opened:
        yield opened


@pytest.fixture(scope="module")
def caller_headers(
    api_url: str, admin_headers: dict[str, str], role_headers: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """Headers for every caller: nobody, a user of each role, an API key of each role."""
    headers: dict[str, dict[str, str]] = {"anonymous": {}, **role_headers}
    for role in ROLES:
        answer = httpx.post(
            f"{api_url}/api/v1/api-keys",
            json={"name": f"matrix {role} {secrets.token_hex(2)}", "role": role},
            headers=admin_headers,
        )
        assert answer.status_code == 201, answer.text
        headers[f"apikey:{role}"] = {"X-API-Key": answer.json()["key"]}
    return headers


def test_the_route_list_has_the_routes_of_every_context() -> None:
    paths = {route.path for route in ROUTES}
    for expected in ("/api/v1/products", "/api/v1/users", "/api/v1/api-keys", "/api/v1/auth/me"):
        assert expected in paths
    assert len(ROUTES) > 30


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_every_protected_route_declares_who_may_call_it(route: Route) -> None:
    assert route.public or route.guards, "a protected route without permission guards"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_route_answers_each_caller_as_the_role_matrix_says(
    route: Route, caller: str, client: httpx.Client, caller_headers: dict[str, dict[str, str]]
) -> None:
    body: Any = {} if route.writes else None
    answer = client.request(route.method, route.path, json=body, headers=caller_headers[caller])
    kind, _, role = caller.rpartition(":")
    kind = kind or "user"
    if route.public:
        assert answer.status_code not in (401, 403), answer.text
    elif caller == "anonymous":
        assert answer.status_code == 401, answer.text
        assert answer.json()["type"] == "/problems/unauthenticated"
    elif route.allows(role, kind):
        assert answer.status_code not in (401, 403), answer.text
        assert answer.status_code < 500, answer.text
    else:
        assert answer.status_code == 403, answer.text
        assert answer.json()["type"] == "/problems/forbidden"


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_viewers_write_nothing_and_employees_set_no_prices(route: Route) -> None:
    own_account = any(guard.permission is None for guard in route.guards)
    if route.writes and not route.public and not own_account:
        assert not route.allows("viewer", "user")
    if any(guard.permission == Permission.PRICES_WRITE for guard in route.guards):
        assert not route.allows("employee", "user")


def test_a_route_that_declares_no_permission_is_refused() -> None:
    @get("/api/v1/forgotten", sync_to_thread=False)
    def forgotten() -> str:
        return "should not be reachable"

    @get("/api/v1/public", opt={"exclude_from_auth": True}, sync_to_thread=False)
    def public() -> str:
        return "open"

    with create_test_client([forgotten, public], guards=[route_declares_access]) as client:
        assert client.get("/api/v1/forgotten").status_code == 403
        assert client.get("/api/v1/public").status_code == 200


def test_an_employee_may_edit_a_product_but_not_its_price_or_cost(
    api_url: str, admin_headers: dict[str, str], role_headers: dict[str, dict[str, str]]
) -> None:
    product = httpx.post(
        f"{api_url}/api/v1/products",
        json={"sku": f"P-{secrets.token_hex(4)}", "name": "Priced", "price": _eur(1000)},
        headers=admin_headers,
    ).json()
    url = f"{api_url}/api/v1/products/{product['id']}"
    employee = role_headers["employee"]
    assert httpx.patch(url, json={"name": "Renamed"}, headers=employee).status_code == 200
    for change in ({"price": _eur(1)}, {"cost": _eur(1)}):
        denied = httpx.patch(url, json=change, headers=employee)
        assert denied.status_code == 403, change
    manager = role_headers["manager"]
    assert httpx.patch(url, json={"price": _eur(1200)}, headers=manager).status_code == 200


def _eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}
