"""Tamper evidence: hash chains per stream, signed seals over global positions, verification.

Every stored event carries `event_hash = sha256(previous hash of its stream || body)`, where
body = sha256(stream id text) || version (4 bytes, big-endian) || sha256(topic) ||
sha256(state) || sha256(metadata jsonb text); the recorder computes it in the append
statement. The chain alone cannot show an event removed from the end of a stream, a stream
removed whole, or a rewritten chain, so a sealer also signs ranges of global positions: each
seal lists (position, stream, version, hash) of every event in its range and is HMAC-signed
together with the previous seal's signature.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from application.recorder import page_below_horizon

EVENTS_TABLE = "public.pms_events"
SEALS_DDL = """
CREATE TABLE IF NOT EXISTS public.pms_audit_seals (
    seal_number bigint PRIMARY KEY,
    from_position bigint NOT NULL,
    to_position bigint NOT NULL,
    event_count integer NOT NULL,
    entries bytea NOT NULL,
    signature bytea NOT NULL,
    sealed_at timestamptz NOT NULL DEFAULT now()
);
"""
SEAL_SIZE = 10_000
_ENTRY = struct.Struct(">q16si32s")  # position, stream id, version, event hash
_RANGE = struct.Struct(">qqqi")  # seal number, from (exclusive), to (inclusive), count
_SEAL_LOCK = 724002

Progress = Callable[[int], None]


def event_hash(
    previous: bytes, stream_id: str, version: int, topic: str, state: bytes, metadata_text: str
) -> bytes:
    """The chained hash of one stored event, exactly as the recorder computes it."""
    body = b"".join(
        (
            hashlib.sha256(stream_id.encode()).digest(),
            struct.pack(">i", version),
            hashlib.sha256(topic.encode()).digest(),
            hashlib.sha256(state).digest(),
            hashlib.sha256(metadata_text.encode()).digest(),
        )
    )
    return hashlib.sha256(previous + body).digest()


def _signature(key: bytes, previous: bytes, header: bytes, entries: bytes) -> bytes:
    digest = hashlib.sha256(entries).digest()
    return hmac.new(key, previous + header + digest, hashlib.sha256).digest()


@dataclass(frozen=True)
class Seal:
    """A signed range of global positions."""

    number: int
    from_position: int
    to_position: int
    event_count: int


def seal_next(
    connection: psycopg.Connection[Any], key: bytes, limit: int = SEAL_SIZE
) -> Seal | None:
    """Seal the final events after the last seal (at most `limit`); None when none are new."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SEAL_LOCK,))
        last = connection.execute(
            "SELECT seal_number, to_position, signature FROM public.pms_audit_seals"
            " ORDER BY seal_number DESC LIMIT 1"
        ).fetchone()
        number, after, previous = (last[0] + 1, last[1], bytes(last[2])) if last else (1, 0, b"")
        rows = connection.execute(
            page_below_horizon(
                "notification_id, originator_id, originator_version, event_hash",
                EVENTS_TABLE,
                "notification_id > %s",
            ),
            (after, limit),
        ).fetchall()
        if not rows:
            return None
        entries = b"".join(
            _ENTRY.pack(position, UUID(str(stream)).bytes, version, bytes(digest))
            for position, stream, version, digest in rows
        )
        to_position = int(rows[-1][0])
        header = _RANGE.pack(number, after, to_position, len(rows))
        connection.execute(
            "INSERT INTO public.pms_audit_seals (seal_number, from_position, to_position,"
            " event_count, entries, signature) VALUES (%s, %s, %s, %s, %s, %s)",
            (
                number,
                after,
                to_position,
                len(rows),
                entries,
                _signature(key, previous, header, entries),
            ),
        )
        return Seal(number, after, to_position, len(rows))


@dataclass(frozen=True)
class Finding:
    """The first thing verification found wrong."""

    position: int
    stream_id: str
    detail: str


@dataclass(frozen=True)
class Verification:
    """The outcome of checking every chain and every seal."""

    ok: bool
    checked_events: int
    sealed_events: int
    first_bad: Finding | None


def _earliest(current: Finding | None, found: Finding) -> Finding:
    return found if current is None or found.position < current.position else current


def _stream_rows(connection: psycopg.Connection[Any]) -> Iterator[tuple[Any, ...]]:
    with connection.cursor(name="audit_streams") as cursor:
        cursor.itersize = 5000
        cursor.execute(
            "SELECT notification_id, originator_id::text, originator_version, topic, state,"
            f" metadata::text, event_hash FROM {EVENTS_TABLE}"
            " ORDER BY originator_id, originator_version"
        )
        yield from cursor


def _check_chains(
    connection: psycopg.Connection[Any], progress: Progress
) -> tuple[int, Finding | None]:
    checked = 0
    first: Finding | None = None
    stream, version, previous = "", 0, b""
    for position, stream_id, row_version, topic, state, metadata, stored in _stream_rows(
        connection
    ):
        if stream_id != stream:
            stream, version, previous = stream_id, 0, b""
        if row_version != version + 1:
            first = _earliest(
                first,
                Finding(
                    position,
                    stream_id,
                    f"version {row_version} follows {version}: events are missing",
                ),
            )
        expected = event_hash(previous, stream_id, row_version, topic, bytes(state), metadata)
        if expected != bytes(stored):
            first = _earliest(
                first,
                Finding(
                    position,
                    stream_id,
                    f"version {row_version} does not match its hash: the event was altered",
                ),
            )
        version, previous = row_version, bytes(stored)
        checked += 1
        if checked % 10_000 == 0:
            progress(checked)
    return checked, first


def _seal_rows(connection: psycopg.Connection[Any]) -> Iterator[tuple[Any, ...]]:
    # One seal in memory at a time: a seal row holds 60 bytes per sealed event.
    with connection.cursor(name="audit_seals") as cursor:
        cursor.itersize = 1
        cursor.execute(
            "SELECT seal_number, from_position, to_position, event_count, entries, signature"
            " FROM public.pms_audit_seals ORDER BY seal_number"
        )
        yield from cursor


def _check_seals(connection: psycopg.Connection[Any], key: bytes) -> tuple[int, Finding | None]:
    sealed = 0
    previous_signature, previous_to = b"", 0
    for expected_number, (number, start, end, count, entries, signature) in enumerate(
        _seal_rows(connection), 1
    ):
        entries = bytes(entries)
        header = _RANGE.pack(number, start, end, count)
        if (
            number != expected_number
            or start != previous_to
            or len(entries) != count * _ENTRY.size
            or not hmac.compare_digest(
                _signature(key, previous_signature, header, entries), bytes(signature)
            )
        ):
            return sealed, Finding(start + 1, "", f"seal {number} was altered or removed")
        sealed_entries = [_ENTRY.unpack_from(entries, i * _ENTRY.size) for i in range(count)]
        stored = connection.execute(
            f"SELECT notification_id, originator_id, originator_version, event_hash"
            f" FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s"
            " ORDER BY notification_id",
            (start, end),
        ).fetchall()
        actual = [(p, UUID(str(s)).bytes, v, bytes(h)) for p, s, v, h in stored]
        for want, have in zip(sealed_entries, actual, strict=False):
            if want != have:
                position = min(want[0], have[0])
                stream = UUID(bytes=(want if want[0] <= have[0] else have)[1])
                return sealed, Finding(
                    position,
                    str(stream),
                    "differs from the sealed record (deleted, inserted, moved or altered)",
                )
        if len(actual) != len(sealed_entries):
            longer = sealed_entries if len(sealed_entries) > len(actual) else actual
            extra = longer[min(len(actual), len(sealed_entries))]
            what = "was deleted" if longer is sealed_entries else "was inserted"
            return sealed, Finding(extra[0], str(UUID(bytes=extra[1])), f"an event {what}")
        sealed += count
        previous_signature, previous_to = bytes(signature), end
    return sealed, None


def verify(database_url: str, key: bytes, progress: Progress | None = None) -> Verification:
    """Check every stream's chain and every seal; report the earliest bad position."""
    with psycopg.connect(database_url) as connection:
        checked, first = _check_chains(connection, progress or (lambda _: None))
        sealed, seal_problem = _check_seals(connection, key)
    if seal_problem is not None:
        first = _earliest(first, seal_problem)
    return Verification(
        ok=first is None, checked_events=checked, sealed_events=sealed, first_bad=first
    )
