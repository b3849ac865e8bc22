"""Tampering with stored events by plain SQL is detected and located."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest
from conftest import fresh_database
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from application.audit import seal_next, verify
from application.catalogue import CreateProduct, UpdateProduct, create_product, update_product
from application.context import CommandContext
from application.inventory import AdjustStock, ReceiveStock, adjust_stock, receive_stock
from application.locations import CreateLocation, create_location
from application.settings import Settings
from application.store import EventStore
from domain.values import Money
from workers.embedded import ServiceUrls
from workers.migrate import migrate

KEY = b"audit-key-for-tests"


@dataclass(frozen=True)
class Row:
    """One stored event as the tests need it."""

    position: int
    stream: str
    version: int


@pytest.fixture(scope="module")
def sealed_template(servers: ServiceUrls) -> str:
    """A database with a history of events, all sealed; cloned for each test."""
    url = fresh_database(servers.database_url)
    store = EventStore.connect(Settings(database_url=url))
    migrate(store, url)
    context = CommandContext.system("test")
    location = create_location(store, context, CreateLocation(code="T1", name="T")).value.id
    for n in range(4):
        product = create_product(
            store, context, CreateProduct(sku=f"T-{n}", name="P", price=Money(100, "EUR"))
        ).value.id
        update_product(store, context, product, UpdateProduct(name=f"Product {n}"))
        receive_stock(store, context, ReceiveStock(product, location, 10))
        adjust_stock(store, context, AdjustStock(product, location, -2, reason="damaged"))
    store.close()
    with psycopg.connect(url) as connection:
        while seal_next(connection, KEY, limit=7) is not None:
            pass
    return url


@pytest.fixture
def database(sealed_template: str, servers: ServiceUrls) -> str:
    """A fresh copy of the sealed history."""
    name = f"tamper_{secrets.token_hex(4)}"
    with psycopg.connect(servers.database_url, autocommit=True) as connection:
        template = conninfo_to_dict(sealed_template)["dbname"]
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(str(template))
            )
        )
    params = conninfo_to_dict(servers.database_url)
    params["dbname"] = name
    return make_conninfo(**params)  # type: ignore[arg-type]


def _rows(url: str) -> list[Row]:
    with psycopg.connect(url) as connection:
        found = connection.execute(
            "SELECT notification_id, originator_id::text, originator_version FROM pms_events"
            " ORDER BY notification_id"
        ).fetchall()
    return [Row(*row) for row in found]


def _stream_of_length(rows: list[Row], length: int) -> list[Row]:
    streams: dict[str, list[Row]] = {}
    for row in rows:
        streams.setdefault(row.stream, []).append(row)
    return next(s for s in streams.values() if len(s) >= length)


def _tamper(url: str, statement: str, *params: object) -> None:
    with psycopg.connect(url) as connection:
        connection.execute(statement, params)


def test_an_untouched_store_verifies_clean(database: str) -> None:
    checked: list[int] = []
    result = verify(database, KEY, progress=checked.append)
    assert result.ok
    assert result.first_bad is None
    assert result.checked_events == len(_rows(database))
    assert result.sealed_events == result.checked_events


def _expect(database: str, position: int, stream: str) -> None:
    result = verify(database, KEY)
    assert not result.ok
    assert result.first_bad is not None
    assert (result.first_bad.position, result.first_bad.stream_id) == (position, stream)


CASES: dict[str, Callable[[str, list[Row]], tuple[int, str]]] = {}


def case(name: str) -> Callable[[Callable[[str, list[Row]], tuple[int, str]]], object]:
    """Register a kind of tampering: it changes the store and says where it should be found."""

    def register(tamper: Callable[[str, list[Row]], tuple[int, str]]) -> object:
        CASES[name] = tamper
        return tamper

    return register


@case("changed body")
def _changed_body(url: str, rows: list[Row]) -> tuple[int, str]:
    target = rows[len(rows) // 2]
    _tamper(
        url,
        "UPDATE pms_events SET state = state || ' '::bytea WHERE notification_id = %s",
        target.position,
    )
    return target.position, target.stream


@case("changed metadata")
def _changed_metadata(url: str, rows: list[Row]) -> tuple[int, str]:
    target = rows[3]
    _tamper(
        url,
        'UPDATE pms_events SET metadata = \'{"actor": "user:mallory"}\' WHERE notification_id = %s',
        target.position,
    )
    return target.position, target.stream


@case("deleted in the middle of a stream")
def _deleted_middle(url: str, rows: list[Row]) -> tuple[int, str]:
    target = _stream_of_length(rows, 3)[1]
    _tamper(url, "DELETE FROM pms_events WHERE notification_id = %s", target.position)
    return target.position, target.stream


@case("deleted at the end of a stream")
def _deleted_end(url: str, rows: list[Row]) -> tuple[int, str]:
    target = _stream_of_length(rows, 3)[-1]
    _tamper(url, "DELETE FROM pms_events WHERE notification_id = %s", target.position)
    return target.position, target.stream


@case("a whole stream deleted")
def _deleted_stream(url: str, rows: list[Row]) -> tuple[int, str]:
    stream = _stream_of_length(rows, 3)
    _tamper(url, "DELETE FROM pms_events WHERE originator_id = %s::uuid", stream[0].stream)
    return stream[0].position, stream[0].stream


@case("an inserted event")
def _inserted(url: str, rows: list[Row]) -> tuple[int, str]:
    source = _stream_of_length(rows, 3)[-1]
    taken = {row.position for row in rows}
    position = next(r.position + 1 for r in rows[2:] if r.position + 1 not in taken)
    _tamper(
        url,
        "INSERT INTO pms_events (notification_id, originator_id, originator_version,"
        " topic, state, metadata, event_hash) SELECT %s, originator_id, originator_version + 100,"
        " topic, state, metadata, event_hash FROM pms_events WHERE notification_id = %s",
        position,
        source.position,
    )
    return position, source.stream


@case("two events swapped")
def _swapped(url: str, rows: list[Row]) -> tuple[int, str]:
    first, second = rows[4], rows[9]
    _tamper(
        url,
        "UPDATE pms_events e SET state = o.state, topic = o.topic FROM pms_events o"
        " WHERE (e.notification_id, o.notification_id) IN ((%s, %s), (%s, %s))",
        first.position,
        second.position,
        second.position,
        first.position,
    )
    return first.position, first.stream


@case("a seal altered")
def _seal_altered(url: str, rows: list[Row]) -> tuple[int, str]:
    _tamper(url, "UPDATE pms_audit_seals SET event_count = event_count - 1 WHERE seal_number = 1")
    return 1, ""


@pytest.mark.parametrize("kind", list(CASES))
def test_tampering_is_detected_at_the_right_place(database: str, kind: str) -> None:
    position, stream = CASES[kind](database, _rows(database))
    _expect(database, position, stream)
