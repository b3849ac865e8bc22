"""Real servers for the test session: embedded ones unless PMS_TEST_*_URL point elsewhere."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from application.settings import Settings
from application.store import EventStore
from workers.embedded import EmbeddedServices, ServiceUrls
from workers.migrate import migrate


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceUrls]:
    """PostgreSQL, NATS (JetStream) and Redis for the whole session."""
    given = ServiceUrls(
        database_url=os.environ.get("PMS_TEST_DATABASE_URL", ""),
        nats_url=os.environ.get("PMS_TEST_NATS_URL", ""),
        redis_url=os.environ.get("PMS_TEST_REDIS_URL", ""),
    )
    embedded = EmbeddedServices(
        tmp_path_factory.mktemp("servers"),
        postgres=not given.database_url,
        nats=not given.nats_url,
        redis=not given.redis_url,
    )
    started = embedded.start()
    try:
        yield ServiceUrls(
            database_url=given.database_url or started.database_url,
            nats_url=given.nats_url or started.nats_url,
            redis_url=given.redis_url or started.redis_url,
        )
    finally:
        embedded.stop()


def fresh_database(server_url: str) -> str:
    """Create an empty database on the server of `server_url`; return its URL."""
    name = f"pms_test_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    return make_conninfo(**params)  # type: ignore[arg-type]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def settings(servers: ServiceUrls, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a fresh, migrated database on the session's servers."""
    result = Settings(
        database_url=fresh_database(servers.database_url),
        nats_url=servers.nats_url,
        redis_url=servers.redis_url,
        port=free_port(),
        data_dir=Path(tmp_path_factory.mktemp("data")),
        jwt_secret=secrets.token_urlsafe(32),
        audit_key=secrets.token_urlsafe(32),
        admin_email="admin@example.com",
        admin_password="admin-password-for-tests",
        log_level="WARNING",
        min_position_wait_seconds=10.0,
        # One admin and one address make every request of the shared API process: its abuse
        # limits stay out of the way (tests/e2e/test_identity.py runs processes with small ones).
        rate_limit_per_minute=0,
        login_ip_max_attempts=1_000,
    )
    store = EventStore.connect(result)
    try:
        migrate(store, result.database_url)
    finally:
        store.close()
    return result


@pytest.fixture(scope="session")
def store(settings: Settings) -> Iterator[EventStore]:
    """The event store seam on the session's database."""
    opened = EventStore.connect(settings)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def admin(settings: Settings) -> None:
    """The first admin exists."""
    from application.identity import ensure_admin

    opened = EventStore.connect(settings)
    try:
        ensure_admin(opened, settings.admin_email, settings.admin_password)
    finally:
        opened.close()


@pytest.fixture(scope="session")
def api_url(settings: Settings, admin: None) -> Iterator[str]:
    """Base URL of a running API process."""
    from support import PmsProcess, wait_for_api

    process = PmsProcess("api", settings).start()
    base_url = f"http://127.0.0.1:{settings.port}"
    try:
        wait_for_api(base_url, process)
        yield base_url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def workers(settings: Settings) -> Iterator[None]:
    """Relay and projector processes for the session (tests that kill them make their own)."""
    from support import PmsProcess

    process = PmsProcess("worker", settings).start()
    try:
        yield
    finally:
        process.stop()


@pytest.fixture(scope="session")
def admin_headers(api_url: str, settings: Settings) -> dict[str, str]:
    """Authorization headers of the first admin."""
    from support import login

    headers: dict[str, str] = login(api_url, settings.admin_email, settings.admin_password)
    return headers


@pytest.fixture(scope="session")
def start_api(settings: Settings, admin: None) -> Iterator[Callable[..., str]]:
    """Start another API process (stopped at the end of the session) with some settings changed.

    `start_api(rate_limit_per_minute=5)` serves the session's database on a port of its own;
    pass `base=` a Settings value (e.g. from `fresh_settings`) to serve another database.
    """
    from support import PmsProcess, wait_for_api

    started: list[PmsProcess] = []

    def start(base: Settings | None = None, **changes: Any) -> str:
        chosen = (base or settings).with_changes(port=free_port(), **changes)
        process = PmsProcess("api", chosen).start()
        started.append(process)
        base_url = f"http://127.0.0.1:{chosen.port}"
        wait_for_api(base_url, process)
        return base_url

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.fixture(scope="session")
def fresh_settings(servers: ServiceUrls, settings: Settings) -> Callable[[], Settings]:
    """Settings for another fresh, migrated database with its first admin, for tests that
    change what every other test shares (company settings, random data)."""
    from application.identity import ensure_admin

    def make() -> Settings:
        result = settings.with_changes(database_url=fresh_database(servers.database_url))
        opened = EventStore.connect(result)
        try:
            migrate(opened, result.database_url)
            ensure_admin(opened, result.admin_email, result.admin_password)
        finally:
            opened.close()
        return result

    return make


TEST_PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def role_headers(api_url: str, store: EventStore) -> dict[str, dict[str, str]]:
    """Authorization headers of a new user for each role."""
    from support import login

    from application.context import CommandContext
    from application.identity import CreateUser, create_user
    from domain.identity import ROLES

    headers: dict[str, dict[str, str]] = {}
    for role in ROLES:
        email = f"{role}-{secrets.token_hex(4)}@example.com"
        command = CreateUser(email=email, name=role.title(), password=TEST_PASSWORD, role=role)
        create_user(store, CommandContext.system("test"), command)
        headers[role] = login(api_url, email, TEST_PASSWORD)
    return headers


@pytest.fixture
def isolated(servers: ServiceUrls, tmp_path: Path) -> Iterator[tuple[Settings, EventStore]]:
    """A fresh migrated database and a NATS server of its own (streams are per server), for
    tests that run their own relay and projector processes."""
    with EmbeddedServices(tmp_path, postgres=False, redis=False) as own:
        settings = Settings(
            database_url=fresh_database(servers.database_url),
            nats_url=own.nats_url,
            redis_url=servers.redis_url,
            jwt_secret="unused-in-these-tests",
            log_level="WARNING",
        )
        store = EventStore.connect(settings)
        migrate(store, settings.database_url)
        try:
            yield settings, store
        finally:
            store.close()
