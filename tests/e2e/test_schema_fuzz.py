"""Schemathesis against the API's own OpenAPI document: no 500s, every answer as documented.

It runs on a database of its own (generated requests change company settings and create
junk), signed in as the first admin, a few valid and a few invalid requests per operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance
from support import login

from application.settings import Settings

EXAMPLES_PER_MODE = 10
_AUTH = {"authorization", "x-api-key"}


@pytest.fixture(scope="module")
def fuzzed_api(
    start_api: Callable[..., str], fresh_settings: Callable[[], Settings]
) -> tuple[str, Settings]:
    """An API process on a fresh database, without login back-off (fuzzing fails logins),
    with a webhook secret so that webhooks are checked rather than refused as unconfigured."""
    chosen = fresh_settings().with_changes(stripe_webhook_secret="whsec_fuzz")
    return start_api(chosen, login_max_attempts=10**6, login_ip_max_attempts=10**6), chosen


def test_generated_requests_never_get_a_500_and_answers_match_the_schema(
    fuzzed_api: tuple[str, Settings],
) -> None:
    base_url, chosen = fuzzed_api
    admin = login(base_url, chosen.admin_email, chosen.admin_password)

    def headers_for(operation: Any) -> Callable[[], dict[str, str]]:
        # Logging out ends the session every later request uses: sign in afresh for it.
        if operation.method.upper() == "POST" and operation.path.endswith("/auth/logout"):
            return lambda: login(base_url, chosen.admin_email, chosen.admin_password)
        return lambda: admin

    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"the schema has an operation schemathesis cannot read: {result}")
            continue
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, base_url, headers_for(operation))
            except Unsatisfiable:
                pass  # no invalid request exists for an operation without inputs
            except Exception as exc:  # every operation and mode, all reported together
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert operations > 30
    assert not failures, "\n\n".join(failures)


def _fuzz(
    operation: Any, mode: GenerationMode, base_url: str, headers: Callable[[], dict[str, str]]
) -> None:
    """A few generated requests for one operation; raises on the first failed check."""

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        # The document offers a bearer token or an API key; generated ones would only be 401.
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in _AUTH}
        response = case.call(base_url=base_url, headers=headers(), timeout=30)
        # A 500 is a bug; a 503 names a dependency or setting that is missing, by design.
        assert response.status_code != 500, f"{case.method} {case.formatted_path}: {response.text}"
        case.validate_response(response, checks=[response_schema_conformance])

    run()
