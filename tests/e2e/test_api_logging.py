"""The API logs at the level PMS_LOG_LEVEL names (the web framework must not reset it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from api.app import create_app
from application.settings import Settings


@pytest.fixture
def root_level() -> Iterator[None]:
    before = logging.getLogger().level
    yield
    logging.getLogger().setLevel(before)


@pytest.mark.usefixtures("root_level")
def test_the_api_keeps_the_configured_log_level(settings: Settings) -> None:
    app = create_app(settings.with_changes(log_level="WARNING"))
    with TestClient(app) as client:
        assert client.get("/health").status_code in (200, 503)
        assert logging.getLogger().level == logging.WARNING
        assert not logging.getLogger("pms.request").isEnabledFor(logging.INFO)
