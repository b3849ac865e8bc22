"""Rebuilding a projection group while the worker projects and commands keep arriving: readers
never see an empty or half-built table, and the switched tables equal a fresh fold."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from conftest import fresh_database
from histories import Shop, random_step
from psycopg import sql
from psycopg.rows import dict_row
from support import PmsProcess

from application.settings import Settings
from application.store import EventStore
from projections.base import ProjectionGroup
from projections.registry import projection_groups
from projections.schemas import search_path_option
from workers.embedded import ServiceUrls
from workers.migrate import group_ddl, migrate
from workers.rebuild import Rebuild

WATCHED = ("products", "locations", "customers", "stock_moves", "orders", "order_timeline")


def live_position(url: str) -> int:
    """Where the live tables of the main group are."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT position FROM read.projection_positions WHERE group_name = 'main'"
        ).fetchone()
    return int(row[0]) if row else 0


def wait_until_caught_up(url: str, store: EventStore, timeout: float = 60) -> int:
    """Block until the live projector applied everything stored."""
    deadline = time.monotonic() + timeout
    while (position := live_position(url)) < store.max_position():
        assert time.monotonic() < deadline, "the projector did not catch up"
        time.sleep(0.05)
    return position


def wait_until_quiet(url: str, store: EventStore, quiet: float = 1.0, timeout: float = 60) -> int:
    """Block until the live projector applied everything stored and nothing more was stored for
    `quiet` seconds: the process managers' reactions to the last commands are in too."""
    deadline = time.monotonic() + timeout
    while True:
        position = wait_until_caught_up(url, store, timeout)
        time.sleep(quiet)
        if store.max_position() == position:
            return position
        assert time.monotonic() < deadline, "events kept arriving"


class Reader(threading.Thread):
    """Reads the live tables over and over, as the API does, noting anything wrong."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.problems: list[str] = []
        self.reads = 0

    def run(self) -> None:
        seen = {table: 0 for table in WATCHED}
        position = 0
        with psycopg.connect(self.url, autocommit=True, options=search_path_option("read")) as conn:
            while not self.stop.is_set():
                try:
                    with conn.transaction():  # as projections.positions.consistent_read
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        conn.execute("LOCK TABLE projection_positions IN ACCESS SHARE MODE")
                        row = conn.execute("SELECT position FROM projection_positions").fetchone()
                        now = int(row[0]) if row else 0
                        counts = {table: self._count(conn, table) for table in WATCHED}
                except psycopg.Error as error:
                    self.problems.append(f"read failed: {error}")
                    continue
                if now < position:
                    self.problems.append(f"position went back from {position} to {now}")
                for table, count in counts.items():
                    if count < seen[table]:
                        self.problems.append(f"{table} shrank from {seen[table]} to {count}")
                    seen[table] = max(seen[table], count)
                position = max(position, now)
                self.reads += 1

    @staticmethod
    def _count(conn: psycopg.Connection[Any], table: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        found = conn.execute(query).fetchone()
        return int(found[0]) if found else 0


def load(store: EventStore, stop: threading.Event, seed: int) -> None:
    """Commands, one after another, until `stop`."""
    shop = Shop(store)
    shop.seed()
    rng = random.Random(seed)
    while not stop.is_set():
        shop.run(random_step(rng))


def rows(url: str, group: ProjectionGroup) -> dict[str, list[str]]:
    """Every row of the group's tables in `group.schema`, in a stable order."""
    found: dict[str, list[str]] = {}
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for table in group.tables():
            query = sql.SQL("SELECT * FROM {}.{}").format(
                sql.Identifier(group.schema), sql.Identifier(table)
            )
            found[table] = sorted(repr(sorted(row.items())) for row in conn.execute(query))
    return found


def fresh_fold(url: str, store: EventStore) -> ProjectionGroup:
    """The group built from scratch into a schema of its own, by the same rebuild."""
    [group] = projection_groups()
    fold = replace(group, schema="t_fold")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(group_ddl(fold, fold.schema))
    asyncio.run(Rebuild(fold, store, url).run())
    return fold


def test_a_rebuild_under_load_switches_without_readers_noticing(
    isolated: tuple[Settings, EventStore],
) -> None:
    settings, store = isolated
    url = settings.database_url
    seeding = Shop(store)
    seeding.seed()
    rng = random.Random(3)
    for _ in range(400):
        seeding.run(random_step(rng))
    worker = PmsProcess("worker", settings).start()
    reader, stop = Reader(url), threading.Event()
    writers = [threading.Thread(target=load, args=(store, stop, n)) for n in range(2)]
    try:
        wait_until_caught_up(url, store)
        reader.start()
        for writer in writers:
            writer.start()
        time.sleep(0.5)
        before = store.max_position()
        rebuilt = subprocess.run(
            [sys.executable, "-m", "workers", "projections", "rebuild", "main"],
            env={**os.environ, **settings.as_env()},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "rebuilt main" in rebuilt.stdout
        time.sleep(0.5)  # readers and writers go on after the switch
        stop.set()
        for writer in writers:
            writer.join()
        wait_until_quiet(url, store)
    finally:
        stop.set()
        reader.stop.set()
        worker.stop()
    reader.join()
    assert reader.reads > 20
    assert reader.problems == []
    assert store.max_position() > before  # commands kept arriving while it ran
    [group] = projection_groups()
    fold = fresh_fold(url, store)
    assert live_position(url) == store.max_position()
    assert rows(url, group) == rows(url, fold)


class Interrupt(Exception):
    """Stands in for Ctrl-C in the middle of a rebuild."""


def test_an_interrupted_rebuild_resumes_where_it_stopped(
    isolated: tuple[Settings, EventStore],
) -> None:
    settings, store = isolated
    url = settings.database_url
    shop = Shop(store)
    shop.seed()
    rng = random.Random(5)
    for _ in range(300):
        shop.run(random_step(rng))
    [group] = projection_groups()

    def interrupt(done: int, total: int) -> None:
        if done >= 200:
            raise Interrupt

    with pytest.raises(Interrupt):
        asyncio.run(Rebuild(group, store, url, page=100, progress=interrupt).run())
    with psycopg.connect(url) as conn:
        row: Any = conn.execute(
            "SELECT position, state FROM read_next.projection_positions"
        ).fetchone()
    assert row[1] == "rebuilding"
    assert row[0] > 0
    result = asyncio.run(Rebuild(group, store, url, page=100).run())
    assert result.position == store.max_position()
    assert 0 < result.events < sum(1 for _ in store.iter_notifications(0))  # only the rest
    with psycopg.connect(url) as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    assert "read_next" not in schemas
    assert "read_old" not in schemas
    fold = fresh_fold(url, store)
    assert rows(url, group) == rows(url, fold)


def test_migrate_moves_the_old_outbox_out_of_the_read_schema(
    servers: ServiceUrls, settings: Settings
) -> None:
    url = fresh_database(servers.database_url)
    with psycopg.connect(url, autocommit=True) as conn:  # as an earlier version left it
        conn.execute(
            "CREATE SCHEMA read; CREATE TABLE read.change_outbox (group_name text NOT NULL,"
            " position bigint NOT NULL, seq integer NOT NULL, topic text NOT NULL,"
            " event text NOT NULL, data jsonb NOT NULL, PRIMARY KEY (group_name, position, seq));"
            " INSERT INTO read.change_outbox VALUES ('main', 7, 0, 'alerts', 'system_alert', '{}')"
        )
    store = EventStore.connect(settings.with_changes(database_url=url))
    try:
        migrate(store, url)
        migrate(store, url)  # and again: nothing left to do
    finally:
        store.close()
    with psycopg.connect(url) as conn:
        moved = conn.execute("SELECT group_name, position, topic FROM public.pms_change_outbox")
        assert moved.fetchall() == [("main", 7, "alerts")]
        old = conn.execute("SELECT to_regclass('read.change_outbox')").fetchone()
        assert old == (None,)
