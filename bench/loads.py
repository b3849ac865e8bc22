"""Loading a stock item with a long history: from its latest snapshot, against a full replay.

A stock item gains two events per order line it serves, so its history grows with the
business; every command on it loads it first. The baseline replays every event of the item
(`app.repository`, events only, as before snapshots); the measured load reads the latest
snapshot and the events after it (`app.load_many`, what commands do).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from uuid import UUID, uuid4

from application.context import CommandContext
from application.settings import Settings
from application.store import EventStore
from bench.report import Results, percentile
from domain.inventory import StockItem
from domain.values import Money

EVENTS_PER_SAVE = 500


@dataclass(frozen=True)
class LoadsPlan:
    """History lengths to measure, loads per measurement, runs."""

    histories: tuple[int, ...] = (1_000, 10_000, 30_000)
    loads: int = 20
    reps: int = 3


def _stock_item(store: EventStore, events: int) -> UUID:
    """A stock item with about `events` events: a receipt, then orders reserved and issued."""
    metadata = CommandContext.system("bench").metadata()
    item = StockItem.open(uuid4(), uuid4())
    item.receive(events, Money(100, "EUR"), reason="bench", document=None)
    while item.version < events:
        for _ in range(min(EVENTS_PER_SAVE, events - item.version) // 2 or 1):
            document = f"SO-{item.version}"
            item.reserve(1, document=document)
            item.issue(1, document=document)
        store.app.save(item, metadata=metadata)
    store.app.save(item, metadata=metadata)
    return item.id


def _median_ms(load: Callable[[], object], count: int) -> float:
    load()  # warm: connection, prepared statement
    times = []
    for _ in range(count):
        started = time.perf_counter()
        load()
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 0.5)


def run(settings: Settings, plan: LoadsPlan, results: Results) -> None:
    """Each history length: build an item, then time loads both ways, `reps` times."""
    store = EventStore.connect(settings)
    try:
        for events in plan.histories:
            item_id = _stock_item(store, events)
            for _ in range(plan.reps):
                replay = partial(store.app.repository.get, item_id)
                replayed = _median_ms(replay, plan.loads)
                snapshot = _median_ms(partial(store.app.load_many, [item_id]), plan.loads)
                results.add(f"loads.{events}.replay", "replayed", "ms", replayed)
                results.add(f"loads.{events}.snapshot", "from snapshot", "ms", snapshot)
                print(
                    f"  stock item of {events:,} events: replay {replayed:.1f} ms,"
                    f" snapshot {snapshot:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        store.close()


def rows(results: Results) -> list[list[str]]:
    """Rows of the loads table, shortest history first."""
    found = []
    measured = sorted(int(key.split(".")[1]) for key in results.figures if key.endswith(".replay"))
    for events in measured:
        replayed = results.figures[f"loads.{events}.replay"]
        snapshot = results.figures.get(f"loads.{events}.snapshot")
        if snapshot is None:
            continue
        ratio = replayed.median / snapshot.median if snapshot.median else float("nan")
        found.append([f"{events:,}", replayed.text(), snapshot.text(), f"{ratio:,.0f}×"])
    return found
