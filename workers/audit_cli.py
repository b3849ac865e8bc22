"""`pms audit verify` and `pms audit export`: long-running audit work with progress."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

import msgspec
import psycopg

from application.audit import verify
from application.history import iter_log
from application.settings import Settings
from application.store import EventStore


class ProgressLine:
    """A one-line progress display on stderr: count, percentage, rate and ETA."""

    def __init__(self, label: str, total: int, stream: TextIO = sys.stderr) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream
        self.started = time.monotonic()

    def __call__(self, done: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate else 0.0
        self.stream.write(
            f"\r{self.label}: {done:,}/{self.total:,} ({100 * done / self.total:.0f} %)"
            f"  {rate:,.0f} events/s  ETA {eta:.0f} s "
        )
        self.stream.flush()

    def finish(self, done: int) -> None:
        """Print the final figure and end the line."""
        self(done)
        self.stream.write("\n")


def _count_events(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT count(*) FROM public.pms_events").fetchone()
    return int(row[0]) if row else 0


def run_verify(settings: Settings, _: argparse.Namespace) -> int:
    """Verify every chain and seal; exit 1 and name the first bad position if tampered."""
    settings.require_servers()
    if not settings.audit_key:
        print("pms audit verify: missing PMS_AUDIT_KEY", file=sys.stderr)
        return 1
    progress = ProgressLine("verifying", _count_events(settings.database_url))
    result = verify(settings.database_url, settings.audit_key.encode(), progress)
    progress.finish(result.checked_events)
    if result.ok:
        print(f"ok: {result.checked_events:,} events, {result.sealed_events:,} sealed")
        return 0
    assert result.first_bad is not None
    bad = result.first_bad
    where = f" in stream {bad.stream_id}" if bad.stream_id else ""
    print(f"TAMPERED: first bad position {bad.position}{where}: {bad.detail}")
    return 1


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the log (or a range) as NDJSON to stdout or --output."""
    settings.require_servers()
    store = EventStore.connect(settings)
    encoder = msgspec.json.Encoder()
    output = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    progress = ProgressLine("exporting", _count_events(settings.database_url))
    written = 0
    try:
        for event in iter_log(store, after=args.after, until=args.until):
            output.write(encoder.encode(event) + b"\n")
            written += 1
            if written % 10_000 == 0:
                progress(written)
        progress.finish(written)
    finally:
        if args.output:
            output.close()
        store.close()
    return 0
