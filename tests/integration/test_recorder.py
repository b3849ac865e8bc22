"""The event store's application recorder, against a real PostgreSQL.

Contract tests run against both the stock recorder and XidOrderedRecorder; the rest cover
what only the xid-ordered one promises (metadata, the horizon, lock-free concurrency).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.projection import ApplicationSubscription
from eventsourcing.utils import get_topic
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier

from application.recorder import ORDINAL_BITS, StoredNotification, XidOrderedRecorder
from workers.embedded import ServiceUrls

RECORDER_TOPICS = {
    "stock": "eventsourcing.postgres:PostgresApplicationRecorder",
    "xid": "application.recorder:XidOrderedRecorder",
}
_app_numbers = itertools.count(1)


class Counter(Aggregate):
    """A minimal aggregate with two event types."""

    class Created(Aggregate.Created):
        pass

    class Incremented(Aggregate.Event):
        pass

    @event(Created)
    def __init__(self) -> None:
        self.count = 0

    @event(Incremented)
    def increment(self) -> None:
        self.count += 1


CREATED = get_topic(Counter.Created)
INCREMENTED = get_topic(Counter.Incremented)


class RecorderTestApp(Application[UUID]):
    """A stock Application whose name (so table name) is given per test."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        super().__init__(env)


@pytest.fixture(scope="module")
def database_env(servers: ServiceUrls) -> Iterator[dict[str, str]]:
    """A fresh database for this module (dropped afterwards), as eventsourcing env vars."""
    url = servers.database_url
    params = conninfo_to_dict(url)
    name = f"pms_test_recorder_{uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SQL("CREATE DATABASE {}").format(Identifier(name)))
    try:
        yield {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": name,
            "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
            "POSTGRES_PORT": str(params.get("port", "5432")),
            "POSTGRES_USER": str(params.get("user", "postgres")),
            "POSTGRES_PASSWORD": str(params.get("password", "")),
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "22",
        }
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(Identifier(name)))


def make_app(database_env: dict[str, str], kind: str, **env: str) -> RecorderTestApp:
    """An Application on its own table, with the given recorder ("stock" or "xid")."""
    name = f"{kind}{next(_app_numbers)}"
    topic = {"APPLICATION_RECORDER_TOPIC": RECORDER_TOPICS[kind]}
    return RecorderTestApp(name, {**database_env, **topic, **env})


@pytest.fixture(params=["stock", "xid"])
def app(request: pytest.FixtureRequest, database_env: dict[str, str]) -> Iterator[RecorderTestApp]:
    """An Application with the stock recorder, then with XidOrderedRecorder."""
    application = make_app(database_env, request.param)
    yield application
    application.close()


@pytest.fixture
def xid_app(database_env: dict[str, str]) -> Iterator[RecorderTestApp]:
    """An Application with XidOrderedRecorder."""
    application = make_app(database_env, "xid")
    yield application
    application.close()


def xid_recorder(app: Application[UUID]) -> XidOrderedRecorder:
    assert isinstance(app.recorder, XidOrderedRecorder)
    return app.recorder


def all_notifications(app: Application[UUID]) -> list[Notification]:
    return list(app.recorder.select_notifications(start=None, limit=1_000_000))


def wait_until_visible(app: Application[UUID], position: int, timeout: float = 5.0) -> None:
    """Wait for the horizon to pass `position` (other transactions in the cluster hold it)."""
    deadline = time.monotonic() + timeout
    while (app.recorder.max_notification_id() or 0) < position:
        assert time.monotonic() < deadline, f"position {position} never became visible"
        time.sleep(0.001)


def load(app: Application[UUID], counter_id: UUID) -> Counter:
    counter: object = app.repository.get(counter_id)
    assert isinstance(counter, Counter)
    return counter


def stored(app: Application[UUID], *aggregates: Counter) -> list[StoredEvent]:
    return [app.mapper.to_stored_event(e) for a in aggregates for e in a.collect_events()]


# Contract: both recorders.


def test_stale_save_raises_integrity_error_and_writes_nothing(app: RecorderTestApp) -> None:
    counter = Counter()
    app.save(counter)
    first, second = load(app, counter.id), load(app, counter.id)
    first.increment()
    app.save(first)
    before = all_notifications(app)

    second.increment()
    with pytest.raises(IntegrityError):
        app.save(second)

    assert all_notifications(app) == before
    assert app.repository.get(counter.id).version == 2


def test_save_of_several_aggregates_writes_nothing_when_one_conflicts(
    app: RecorderTestApp,
) -> None:
    existing = Counter()
    app.save(existing)
    stale, current = load(app, existing.id), load(app, existing.id)
    current.increment()
    app.save(current)
    before = all_notifications(app)

    new = Counter()
    new.increment()
    stale.increment()
    with pytest.raises(IntegrityError):
        app.save(new, stale)

    with pytest.raises(AggregateNotFoundError):
        app.repository.get(new.id)
    assert all_notifications(app) == before


def test_positions_increase_in_commit_order_and_versions_in_order(app: RecorderTestApp) -> None:
    a, b = Counter(), Counter()
    a.increment()
    positions = [r.notification.id for r in app.save(a, b)]
    b.increment()
    b.increment()
    c = Counter()
    positions += [r.notification.id for r in app.save(c, b)]
    a.increment()
    positions += [r.notification.id for r in app.save(a)]
    wait_until_visible(app, positions[-1])

    notifications = all_notifications(app)
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert [n.id for n in notifications] == positions
    versions: dict[UUID | str, list[int]] = defaultdict(list)
    for n in notifications:
        versions[n.originator_id].append(n.originator_version)
    assert versions == {a.id: [1, 2, 3], b.id: [1, 2, 3], c.id: [1]}


def test_select_notifications_honours_start_stop_limit_topics(app: RecorderTestApp) -> None:
    counters = [Counter() for _ in range(3)]
    for counter in counters:
        counter.increment()
    recordings = [r for counter in counters for r in app.save(counter)]
    ids = [r.notification.id for r in recordings]
    created = [r.notification.id for r in recordings if r.notification.topic == CREATED]
    wait_until_visible(app, ids[-1])

    def select(start: int | None, limit: int = 100, **kwargs: Any) -> list[int]:
        return [n.id for n in app.recorder.select_notifications(start, limit, **kwargs)]

    assert select(None) == ids
    assert select(ids[2]) == ids[2:]
    assert select(ids[2], inclusive_of_start=False) == ids[3:]
    assert select(ids[1], limit=2) == ids[1:3]
    assert select(ids[1], stop=ids[3]) == ids[1:4]
    assert select(ids[1], stop=ids[3], inclusive_of_start=False) == ids[2:4]
    assert select(None, stop=ids[0]) == ids[:1]
    assert select(ids[1] + 1) == ids[2:]
    assert select(ids[-1], inclusive_of_start=False) == []
    assert select(None, topics=[CREATED]) == created
    assert select(ids[1], topics=(CREATED, INCREMENTED), limit=3) == ids[1:4]
    assert select(None, topics=["no:such.topic"]) == []


def test_max_notification_id_is_the_last_position(app: RecorderTestApp) -> None:
    assert app.recorder.max_notification_id() is None
    counter = Counter()
    counter.increment()
    last = app.save(counter)[-1].notification.id
    wait_until_visible(app, last)
    assert app.recorder.max_notification_id() == last


def test_subscription_yields_new_events_in_order(app: RecorderTestApp) -> None:
    earlier = Counter()
    gt = app.save(earlier)[-1].notification.id
    received: list[int] = []
    with ApplicationSubscription(app, gt=gt) as subscription:

        def consume() -> None:
            for _, tracking in subscription:
                received.append(tracking.notification_id)
                if len(received) == 4:
                    return

        consumer = threading.Thread(target=consume)
        consumer.start()
        counters = [Counter(), Counter()]
        for counter in counters:
            counter.increment()
        ids = [r.notification.id for counter in counters for r in app.save(counter)]
        consumer.join(timeout=5)
    assert received == ids


# XidOrderedRecorder only.


def test_env_topic_selects_the_xid_recorder_whose_create_table_is_idempotent(
    xid_app: RecorderTestApp,
) -> None:
    assert type(xid_app.recorder) is XidOrderedRecorder
    xid_app.save(Counter())
    xid_recorder(xid_app).create_table()  # the factory already created it
    assert len(all_notifications(xid_app)) == 1


def test_metadata_is_stored_once_per_save_and_read_back(xid_app: RecorderTestApp) -> None:
    metadata = {"actor": "user-1", "correlationId": "c-1", "causationId": "cmd-1"}
    a, b = Counter(), Counter()
    a.increment()
    xid_app.save(a, b, metadata=metadata)
    last = xid_app.save(Counter())[-1].notification.id
    wait_until_visible(xid_app, last)

    notifications = all_notifications(xid_app)
    assert all(isinstance(n, StoredNotification) for n in notifications)
    stored_notifications = [n for n in notifications if isinstance(n, StoredNotification)]
    assert [n.metadata for n in stored_notifications] == [metadata] * 3 + [{}]
    for n in stored_notifications:
        assert n.transaction_id == n.id >> ORDINAL_BITS
    assert len({n.transaction_id for n in stored_notifications[:3]}) == 1
    assert [n.id & (2**ORDINAL_BITS - 1) for n in stored_notifications] == [1, 2, 3, 1]
    # Read pages build their notifications without the dataclass constructor: the same values.
    for n in stored_notifications:
        built = StoredNotification(**vars(n))
        assert (built, hash(built), repr(built)) == (n, hash(n), repr(n))
        assert vars(built) == vars(n)


def test_save_of_too_many_events_is_refused(xid_app: RecorderTestApp) -> None:
    events = stored(xid_app, Counter())
    with pytest.raises(DataError, match="at most"):
        xid_app.recorder.insert_events(events * 2**ORDINAL_BITS)


def test_with_a_lock_timeout_saves_conflicts_and_bounds_waits(database_env: dict[str, str]) -> None:
    app = make_app(database_env, "xid", POSTGRES_LOCK_TIMEOUT="1")
    try:
        counter = Counter()
        app.save(counter)
        stale = load(app, counter.id)
        counter.increment()
        app.save(counter, metadata={"actor": "a"})
        stale.increment()
        with pytest.raises(IntegrityError):
            app.save(Counter(), stale)
        assert [n.originator_version for n in all_notifications(app)] == [1, 2]

        # A save that conflicts with an in-flight one waits at most the lock timeout.
        recorder = xid_recorder(app)
        events = stored(app, Counter())
        with recorder.datastore.transaction(commit=False) as in_flight:
            recorder.insert_events_on(in_flight, events)
            started = time.monotonic()
            with pytest.raises(OperationalError), recorder.datastore.transaction() as waiting:
                recorder.insert_events_on(waiting, events)
            assert 0.9 < time.monotonic() - started < 3
    finally:
        app.close()


def test_stopped_subscription_ends_promptly(xid_app: RecorderTestApp) -> None:
    subscription = xid_app.recorder.subscribe(gt=None)
    with subscription:
        consumer = threading.Thread(target=lambda: list(subscription))
        consumer.start()
        time.sleep(0.05)
        stopped_at = time.monotonic()
        subscription.stop()
        consumer.join(timeout=1)
    assert not consumer.is_alive()
    assert time.monotonic() - stopped_at < 0.1


def follow(recorder: XidOrderedRecorder, last: int) -> tuple[list[Notification], int]:
    """Read everything after `last`, as a follower does; return it and the new position."""
    seen: list[Notification] = []
    while batch := recorder.select_notifications(last, 500, inclusive_of_start=False):
        seen.extend(batch)
        last = batch[-1].id
    return seen, last


@pytest.mark.parametrize("late_writer", ["inserts first", "takes its xid first"])
def test_follower_does_not_skip_a_transaction_that_commits_late(
    xid_app: RecorderTestApp, late_writer: str
) -> None:
    # The note's trap: B gets the lower position but commits after A.
    recorder = xid_recorder(xid_app)
    a, b = Counter(), Counter()
    seen, last = follow(recorder, 0)
    with recorder.datastore.transaction(commit=True) as b_curs:
        if late_writer == "inserts first":
            b_ids = recorder.insert_events_on(b_curs, stored(xid_app, b))
        else:
            b_curs.execute("SELECT pg_current_xact_id()")
        with recorder.datastore.transaction(commit=True) as a_curs:
            a_ids = recorder.insert_events_on(a_curs, stored(xid_app, a))
        # A has committed, B is in flight: a follower must not move past B's position.
        seen_meanwhile, last = follow(recorder, last)
        if late_writer == "takes its xid first":
            b_ids = recorder.insert_events_on(b_curs, stored(xid_app, b))
    assert seen == seen_meanwhile == []
    assert max(b_ids) < min(a_ids)

    wait_until_visible(xid_app, a_ids[-1])
    seen, last = follow(recorder, last)
    assert [n.id for n in seen] == b_ids + a_ids


STRESS_SECONDS = 5.0


def test_follower_sees_every_committed_event_once_under_concurrent_writers(
    database_env: dict[str, str],
) -> None:
    app = make_app(database_env, "xid")
    recorder = xid_recorder(app)
    committed: list[tuple[int, UUID | str, int]] = []
    rolled_back: list[int] = []
    conflicts = {"stale": 0, "contended": 0}
    errors: list[BaseException] = []
    deadline = time.monotonic() + STRESS_SECONDS
    shared_ids = []
    for _ in range(3):
        counter = Counter()
        app.save(counter)
        shared_ids.append(counter.id)
    start = app.save(Counter())[-1].notification.id
    wait_until_visible(app, start)

    def record(*aggregates: Counter, **kwargs: Any) -> None:
        for r in app.save(*aggregates, **kwargs):
            n = r.notification
            committed.append((n.id, n.originator_id, n.originator_version))

    def single() -> None:
        counter = Counter()
        record(counter, metadata={"actor": "single"})
        counter.increment()
        record(counter)

    def multi() -> None:
        counters = [Counter() for _ in range(random.randint(2, 3))]
        for counter in counters[1:]:
            counter.increment()
        record(*counters)

    def contended() -> None:
        counter = load(app, random.choice(shared_ids))
        counter.increment()
        try:
            record(counter)
        except IntegrityError:
            conflicts["contended"] += 1

    def stale() -> None:
        counter = Counter()
        record(counter)
        old, new = load(app, counter.id), load(app, counter.id)
        new.increment()
        record(new)
        old.increment()
        with pytest.raises(IntegrityError):
            record(Counter(), old)
        conflicts["stale"] += 1

    def slow() -> None:
        # Takes its xid early and holds its transaction ~200 ms: holds the horizon back.
        counter = Counter()
        counter.increment()
        events = stored(app, counter)
        with recorder.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT pg_current_xact_id()")
            time.sleep(0.1)
            ids = recorder.insert_events_on(curs, events)
            time.sleep(0.1)
        for i, e in zip(ids, events, strict=True):
            committed.append((i, e.originator_id, e.originator_version))

    def rollback() -> None:
        with recorder.datastore.transaction(commit=False) as curs:
            rolled_back.extend(recorder.insert_events_on(curs, stored(app, Counter())))
            time.sleep(random.random() / 50)

    def writer(step: Callable[[], None]) -> None:
        try:
            while time.monotonic() < deadline:
                step()
        except BaseException as e:
            errors.append(e)

    steps = [single] * 6 + [multi] * 3 + [contended] * 3 + [stale, slow, rollback, rollback]
    writers = [threading.Thread(target=writer, args=(step,)) for step in steps]
    seen: list[Notification] = []
    writers_done = threading.Event()

    def follower() -> None:
        last = start
        try:
            while not writers_done.is_set() or last < max(i for i, _, _ in committed):
                batch = recorder.select_notifications(last, 500, inclusive_of_start=False)
                seen.extend(batch)
                last = batch[-1].id if batch else last
                if not batch:
                    time.sleep(0.001)
                assert time.monotonic() < deadline + 10, "follower never caught up"
        except BaseException as e:
            errors.append(e)

    following = threading.Thread(target=follower)
    following.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    following.join()
    try:
        assert errors == []
        assert len(seen) > 1_000, "the writers barely wrote"
        seen_ids = [n.id for n in seen]
        assert seen_ids == sorted(set(seen_ids)), "each event once, in position order"
        assert set(seen_ids) == {i for i, _, _ in committed}
        assert rolled_back
        assert not set(rolled_back) & set(seen_ids)
        assert conflicts["stale"] > 0
        versions: dict[UUID | str, list[int]] = defaultdict(list)
        for n in seen:
            versions[n.originator_id].append(n.originator_version)
        starts = {i: 1 for i in versions}
        for i in shared_ids:
            starts[i] = 2  # created before the follower's start position
        assert all(v == list(range(starts[i], starts[i] + len(v))) for i, v in versions.items())
        assert follow(recorder, seen_ids[-1])[0] == []
    finally:
        app.close()


def _scanned_rows(plan: dict[str, Any]) -> int:
    """Rows the scans of a plan (EXPLAIN ANALYZE, JSON) read from the table, in all."""
    own = plan["Actual Rows"] * plan["Actual Loops"] if "Relation Name" in plan else 0
    return own + sum(_scanned_rows(child) for child in plan.get("Plans", []))


def test_a_page_reads_its_own_rows_however_long_the_log(xid_app: RecorderTestApp) -> None:
    # The horizon is unknown to the planner: bounded by it in the same WHERE as the start,
    # a page of 100 at the start of the log read and sorted the whole log.
    recorder = xid_recorder(xid_app)
    last = xid_app.save(*(Counter() for _ in range(5000)))[-1].notification.id
    wait_until_visible(xid_app, last)
    with recorder.datastore.get_connection() as conn:
        conn.execute(SQL("ANALYZE {}").format(Identifier(recorder.events_table_name)))
        statement, params = recorder.page_statement(0, 100, inclusive_of_start=False)
        explained = conn.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
        plan = explained.fetchone()["QUERY PLAN"][0]["Plan"]  # type: ignore[index]
    assert _scanned_rows(plan) <= 101
    assert [n.id for n in recorder.select_notifications(0, 100)][-1] < last
