"""`python -m bench.projector_floor`: what PostgreSQL allows a projector of stock moves.

The same work two ways on scratch tables shaped like read.stock_levels and read.stock_moves,
batches of 256 adjustments of 1,000 stock items, one transaction per batch:

* per event: UPDATE ... RETURNING, then INSERT ... SELECT (what the projections do today,
  before the low-stock alert queries);
* set-based: fold the batch per stock item, one UPDATE ... FROM unnest(...) RETURNING, the
  running balances computed in Python, one INSERT ... SELECT FROM unnest(...).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import uvloop

from bench.servers import BenchServers

DDL = (
    "CREATE TABLE levels (id uuid PRIMARY KEY, product_id uuid NOT NULL, on_hand bigint NOT NULL,"
    " version int NOT NULL, updated_at timestamptz)",
    "CREATE TABLE moves (position bigint PRIMARY KEY, id uuid NOT NULL, product_id uuid NOT NULL,"
    " kind text, quantity bigint, on_hand_after bigint, reason text, actor text, at timestamptz)",
    "CREATE INDEX ON moves (product_id, position)",
)
BATCH = 256
ITEMS = 1000
Move = tuple[int, uuid.UUID, int]
Apply = Callable[[psycopg.AsyncConnection[Any], list[Move]], Awaitable[None]]


def _batches(items: list[uuid.UUID], count: int, start: int) -> Iterator[list[Move]]:
    position = start
    for _ in range(count):
        batch = []
        for _ in range(BATCH):
            position += 1
            batch.append((position, random.choice(items), random.choice((1, -1, 2))))
        yield batch


async def per_event(connection: psycopg.AsyncConnection[Any], batch: list[Move]) -> None:
    """Two statements per event."""
    async with connection.transaction(), connection.cursor() as cursor:
        for position, item, delta in batch:
            await cursor.execute(
                "UPDATE levels SET on_hand = on_hand + %s, version = version + 1,"
                " updated_at = now() WHERE id = %s RETURNING product_id, on_hand",
                (delta, item),
            )
            await cursor.fetchone()
            await cursor.execute(
                "INSERT INTO moves SELECT %s, id, product_id, 'adjustment', %s, on_hand,"
                " 'bench', 'bench', now() FROM levels WHERE id = %s",
                (position, delta, item),
            )


async def set_based(connection: psycopg.AsyncConnection[Any], batch: list[Move]) -> None:
    """Two statements per batch."""
    totals: dict[uuid.UUID, int] = defaultdict(int)
    for _, item, delta in batch:
        totals[item] += delta
    async with connection.transaction(), connection.cursor() as cursor:
        await cursor.execute(
            "UPDATE levels l SET on_hand = l.on_hand + t.d, version = l.version + 1,"
            " updated_at = now() FROM unnest(%s::uuid[], %s::bigint[]) AS t(id, d)"
            " WHERE l.id = t.id RETURNING l.id, l.product_id, l.on_hand",
            (list(totals), list(totals.values())),
        )
        rows = {row[0]: (row[1], row[2]) for row in await cursor.fetchall()}
        balance = {item: rows[item][1] - total for item, total in totals.items()}
        columns: list[list[Any]] = [[], [], [], [], []]
        for position, item, delta in batch:
            balance[item] += delta
            for column, value in zip(
                columns, (position, item, rows[item][0], delta, balance[item]), strict=True
            ):
                column.append(value)
        await cursor.execute(
            "INSERT INTO moves SELECT p, i, pr, 'adjustment', q, a, 'bench', 'bench', now()"
            " FROM unnest(%s::bigint[], %s::uuid[], %s::uuid[], %s::bigint[], %s::bigint[])"
            " AS m(p, i, pr, q, a)",
            columns,
        )


async def _run(database_url: str, seconds: float, reps: int) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for statement in DDL:
            await conn.execute(statement)
        items = [uuid.uuid4() for _ in range(ITEMS)]
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO levels (id, product_id, on_hand, version) VALUES (%s, %s, 0, 1)",
                [(item, uuid.uuid4()) for item in items],
            )
        start = 0
        ways: tuple[tuple[str, Apply], ...] = (("per event", per_event), ("set-based", set_based))
        for rep in range(reps):
            for name, apply in ways:
                done, began = 0, time.perf_counter()
                while time.perf_counter() - began < seconds:
                    for batch in _batches(items, 4, start):
                        await apply(conn, batch)
                        done += len(batch)
                    start += 4 * BATCH
                rate = done / (time.perf_counter() - began)
                print(f"run {rep + 1} {name:>9}: {rate:,.0f} events/s", flush=True)


def main() -> int:
    """Start servers, measure both ways a few times."""
    with (
        tempfile.TemporaryDirectory(prefix="pms-floor-") as scratch,
        BenchServers(Path(scratch)) as servers,
    ):
        uvloop.run(_run(servers.new_database("floor"), seconds=3.0, reps=3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
