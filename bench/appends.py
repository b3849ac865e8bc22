"""Event store appends: the xid recorder against the stock recorder and a plain psycopg loop.

Each writer is a thread with its own connection (pooled for the recorders). A save is one new
stream of N events written atomically; the recorders get pre-serialised StoredEvents, so the
figures compare write paths, not domain code. Tables are truncated before every run.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID, uuid4

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from application.settings import Settings
from application.store import application_env
from bench.report import Results, percentile, ratio

TOPIC = "bench.appends:Counted"
# About the size of one of our stored events (timestamp, a few fields).
STATE = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2025-01-01T12:00:00.000000+00:00"},'
    b'"quantity":1,"reason":"bench","document":null,"padding":"' + b"x" * 60 + b'"}'
)
METADATA = {"actor": "system:bench", "correlationId": "bench", "causationId": "bench"}

Save = Callable[[int], None]


class Target(Protocol):
    """A way of appending events."""

    name: str

    def session(self) -> AbstractContextManager[Save]:
        """A save function for one writer thread."""
        ...

    def reset(self) -> None:
        """Empty the table."""
        ...


class BenchApplication(Application[UUID]):
    """An eventsourcing Application on its own table (`<name>_events`)."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        super().__init__(env)


def _events(count: int) -> list[StoredEvent]:
    stream = uuid4()
    return [StoredEvent(stream, version, TOPIC, STATE) for version in range(1, count + 1)]


class RecorderTarget:
    """Appends through an eventsourcing application recorder's insert_events."""

    def __init__(self, name: str, settings: Settings, writers: int) -> None:
        self.name = name
        env = {
            **application_env(settings),
            "CREATE_TABLE": "y",
            "POSTGRES_POOL_SIZE": str(writers),
            "POSTGRES_MAX_OVERFLOW": "0",
        }
        self.app = BenchApplication(f"bench{name}", env)
        self.database_url = settings.database_url

    @contextlib.contextmanager
    def session(self) -> Iterator[Save]:
        """insert_events with our metadata (the stock recorder ignores it)."""
        recorder = self.app.recorder

        def save(count: int) -> None:
            recorder.insert_events(_events(count), metadata=METADATA)

        yield save

    def reset(self) -> None:
        """TRUNCATE the events table."""
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            table = f"{self.app.name.lower()}_events"
            connection.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))

    def close(self) -> None:
        """Release the pool."""
        self.app.close()


class PsycopgTarget:
    """What PostgreSQL does for a plain client: one INSERT per save, autocommit.

    Same columns and unique (stream, version) index as the event tables, a bigserial key.
    """

    name = "psycopg"
    DDL = (
        "CREATE TABLE IF NOT EXISTS bench_plain (id bigserial PRIMARY KEY, "
        "originator_id uuid NOT NULL, originator_version int NOT NULL, topic text NOT NULL, "
        "state bytea NOT NULL, UNIQUE (originator_id, originator_version))"
    )
    ONE = (
        "INSERT INTO bench_plain (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s)"
    )
    MANY = (
        "INSERT INTO bench_plain (originator_id, originator_version, topic, state) "
        "SELECT * FROM unnest(%s::uuid[], %s::int[], %s::text[], %s::bytea[])"
    )

    def __init__(self, settings: Settings) -> None:
        self.database_url = settings.database_url
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            connection.execute(self.DDL)

    @contextlib.contextmanager
    def session(self) -> Iterator[Save]:
        """A connection of its own."""
        with psycopg.connect(self.database_url, autocommit=True) as connection:

            def save(count: int) -> None:
                stream = uuid4()
                if count == 1:
                    connection.execute(self.ONE, (stream, 1, TOPIC, STATE), prepare=True)
                    return
                connection.execute(
                    self.MANY,
                    (
                        [stream] * count,
                        list(range(1, count + 1)),
                        [TOPIC] * count,
                        [STATE] * count,
                    ),
                    prepare=True,
                )

            yield save

    def reset(self) -> None:
        """TRUNCATE the table."""
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            connection.execute("TRUNCATE bench_plain")

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class AppendRun:
    """One run of one target."""

    saves_per_second: float
    cpu_us_per_save: float


def measure(
    target: Target, *, writers: int, events: int, warmup: float, window: float
) -> AppendRun:
    """`writers` threads save back to back; count saves during `window` after `warmup`."""
    counts = [0] * writers
    stop = threading.Event()
    ready = threading.Barrier(writers + 1)
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            with target.session() as save:
                ready.wait()
                while not stop.is_set():
                    save(events)
                    counts[index] += 1
        except BaseException as error:  # reported by the main thread
            failures.append(error)
            with contextlib.suppress(threading.BrokenBarrierError):
                ready.abort()

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(writers)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
        time.sleep(warmup)
        saves0, clock0, cpu0 = sum(counts), time.perf_counter(), time.process_time()
        time.sleep(window)
        saves1, clock1, cpu1 = sum(counts), time.perf_counter(), time.process_time()
    except threading.BrokenBarrierError:
        saves0 = saves1 = 0
        clock0, clock1, cpu0, cpu1 = 0.0, 1.0, 0.0, 0.0
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    if failures:
        raise RuntimeError(f"{target.name} writer failed: {failures[0]!r}") from failures[0]
    saves = saves1 - saves0
    return AppendRun(
        saves_per_second=saves / (clock1 - clock0),
        cpu_us_per_save=(cpu1 - cpu0) / saves * 1e6 if saves else float("nan"),
    )


def measure_latency(
    targets: Sequence[Target], *, events: int, rounds: int
) -> dict[str, list[float]]:
    """One writer, saves of each target in turn: per-save wall times in µs, per target.

    Taking turns save by save exposes every target to the same moments, so the comparison
    holds on a busy machine where throughput windows drift.
    """
    times: dict[str, list[float]] = {t.name: [] for t in targets}
    with contextlib.ExitStack() as stack:
        saves = [(t.name, stack.enter_context(t.session())) for t in targets]
        for _ in range(rounds):
            for name, save in saves:
                started = time.perf_counter()
                save(events)
                times[name].append((time.perf_counter() - started) * 1e6)
    return {name: values[rounds // 10 :] for name, values in times.items()}  # minus warm-up


@dataclass(frozen=True)
class AppendPlan:
    """What to run."""

    writers: tuple[int, ...] = (1, 4, 16)
    events_per_save: tuple[int, ...] = (1, 10)
    reps: int = 3
    warmup: float = 0.5
    window: float = 2.0
    latency_rounds: int = 2000  # per run of the interleaved 1-writer latency measurement


def key(target: str, events: int, writers: int) -> str:
    """Figure key of one target's saves/s."""
    return f"appends.{target}.{events}ev.{writers}w"


def run(settings: Settings, plan: AppendPlan, results: Results) -> None:
    """Every (events per save, writers) cell, each target `reps` times, interleaved."""
    most = max(plan.writers)
    plain = PsycopgTarget(settings)
    stock = RecorderTarget("stock", settings.with_changes(event_store="stock"), most)
    xid = RecorderTarget("xid", settings.with_changes(event_store="xid"), most)
    targets: list[PsycopgTarget | RecorderTarget] = [plain, stock, xid]
    try:
        for events in plan.events_per_save:
            for writers in plan.writers:
                for rep in range(plan.reps):
                    for target in targets:
                        target.reset()
                        outcome = measure(
                            target,
                            writers=writers,
                            events=events,
                            warmup=plan.warmup,
                            window=plan.window,
                        )
                        results.add(
                            key(target.name, events, writers),
                            f"{target.name} {events} ev/save {writers} writers",
                            "saves/s",
                            outcome.saves_per_second,
                            cpu_us_per_save=round(outcome.cpu_us_per_save, 1),
                        )
                        results.add(
                            key(target.name, events, writers) + ".cpu",
                            f"{target.name} client CPU per save",
                            "µs",
                            outcome.cpu_us_per_save,
                        )
                    latest = [results.figures[key(t.name, events, writers)] for t in targets]
                    print(
                        f"  appends {events} ev/save {writers:>2} writers run {rep + 1}: "
                        + ", ".join(f"{f.key.split('.')[1]} {f.runs[-1]:,.0f}" for f in latest)
                        + " saves/s",
                        file=sys.stderr,
                        flush=True,
                    )
        for rep in range(plan.reps):
            for target in targets:
                target.reset()
            latencies = measure_latency(targets, events=1, rounds=plan.latency_rounds)
            for name, values in latencies.items():
                results.add(
                    f"appends.{name}.latency",
                    f"{name} save latency, 1 writer, 1 event",
                    "µs",
                    percentile(values, 0.5),
                    p90=round(percentile(values, 0.9)),
                )
            print(
                f"  save latency run {rep + 1} (µs, p50): "
                + ", ".join(f"{n} {percentile(v, 0.5):,.0f}" for n, v in latencies.items()),
                file=sys.stderr,
                flush=True,
            )
    finally:
        for target in targets:
            target.reset()
            target.close()


def summary_rows(results: Results, plan: AppendPlan) -> list[list[str]]:
    """Rows of the appends table."""
    rows = []
    for events in plan.events_per_save:
        for writers in plan.writers:
            cells = {
                t: results.figures.get(key(t, events, writers)) for t in ("psycopg", "stock", "xid")
            }
            if not all(cells.values()):
                continue
            medians = {t: results.median(key(t, events, writers)) for t in cells}
            cpu = {t: results.median(key(t, events, writers) + ".cpu") for t in cells}
            rows.append(
                [
                    f"{events}",
                    f"{writers}",
                    *(f"{cells[t].text()}" for t in ("psycopg", "stock", "xid")),  # type: ignore[union-attr]
                    f"{medians['xid'] * events:,.0f}",
                    f"{ratio(medians['xid'], medians['stock']):.2f}×",
                    f"{ratio(medians['xid'], medians['psycopg']):.2f}×",
                    f"{cpu['psycopg']:.0f} / {cpu['stock']:.0f} / {cpu['xid']:.0f}",
                ]
            )
    return rows


APPEND_HEADERS = [
    "ev/save",
    "writers",
    "psycopg saves/s",
    "stock saves/s",
    "xid saves/s",
    "xid events/s",
    "xid/stock",
    "xid/psycopg",
    "client CPU µs/save p/s/x",
]
