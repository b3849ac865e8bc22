"""Every projection: a full rebuild from the store writes exactly the rows that live batches
wrote, event by event, for any history (generated through the real command handlers)."""

from __future__ import annotations

import itertools
from typing import Any

import psycopg
from histories import Shop, steps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from scratch import scratch_store

from application.settings import Settings
from application.store import EventStore
from projections.base import ProjectionGroup
from projections.registry import projection_groups
from projections.schemas import search_path_option
from workers.embedded import ServiceUrls
from workers.projector import GroupProjector, Incoming
from workers.rebuild import Rebuild

Rows = dict[str, list[tuple[Any, ...]]]


async def project_live(
    url: str, store: EventStore, group: ProjectionGroup, sizes: list[int]
) -> int:
    """Apply the whole store as the live projector does, in batches of the given sizes."""
    async with await AsyncConnection.connect(url, options=search_path_option(group.schema)) as conn:
        projector = GroupProjector(group, store, store.app.mapper)
        await projector.ensure_tracking(conn)
        notifications = list(store.iter_notifications(0))
        previous, done = 0, 0
        for size in itertools.cycle(sizes):
            batch = notifications[done : done + size]
            if not batch:
                return previous
            incoming = []
            for notification in batch:
                incoming.append(Incoming(notification=notification, previous=previous))
                previous = notification.id
            result = await projector.apply_batch(conn, incoming)
            assert result.applied == len(batch)
            done += size
    raise AssertionError("unreachable")


def snapshot(url: str, group: ProjectionGroup) -> tuple[int, Rows]:
    """The group's position and every row of every table, in a stable order."""
    rows: Rows = {}
    with psycopg.connect(url, row_factory=dict_row) as conn:
        position = conn.execute(
            sql.SQL("SELECT position FROM {}.projection_positions WHERE group_name = %s").format(
                sql.Identifier(group.schema)
            ),
            (group.name,),
        ).fetchone()
        for table in group.tables():
            found = conn.execute(
                sql.SQL("SELECT * FROM {}.{}").format(
                    sql.Identifier(group.schema), sql.Identifier(table)
                )
            ).fetchall()
            rows[table] = sorted((tuple(row.items()) for row in found), key=repr)
    return int(position["position"]) if position else 0, rows


def test_every_projection_has_tables_and_the_group_lists_them() -> None:
    [group] = projection_groups()
    names = [projection.name for projection in group.projections]
    assert len(set(names)) == len(names)
    assert len(set(group.tables())) == len(group.tables())
    assert all(projection.tables for projection in group.projections)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    history=st.lists(steps, min_size=20, max_size=60),
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=4),
)
async def test_a_full_rebuild_writes_the_rows_live_batches_wrote(
    servers: ServiceUrls, settings: Settings, history: list[Any], sizes: list[int]
) -> None:
    [group] = projection_groups()
    with scratch_store(servers, settings) as (chosen, store):
        shop = Shop(store)
        shop.seed()
        for step in history:
            shop.run(step)
        last = await project_live(chosen.database_url, store, group, sizes)
        live_position, live = snapshot(chosen.database_url, group)
        result = await Rebuild(group, store, chosen.database_url, page=7).run()
        rebuilt_position, rebuilt = snapshot(chosen.database_url, group)
    assert live_position == rebuilt_position == result.position == last
    assert all(live[table] for table in ("products", "locations", "customers"))  # seeded
    for table in group.tables():
        assert rebuilt[table] == live[table], table
