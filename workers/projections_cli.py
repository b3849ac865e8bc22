"""`pms projections status` and `pms projections rebuild NAME`."""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvloop
from psycopg import AsyncConnection

from application.settings import Settings
from application.store import EventStore
from domain.errors import DomainError
from projections.positions import GroupStatus, find_group, group_status
from projections.registry import projection_groups
from workers.audit_cli import ProgressLine
from workers.rebuild import Rebuild, RebuildFailed


def status_lines(status: GroupStatus) -> list[str]:
    """A group's status in words, first line a table row."""
    lines = [
        f"{status.name:<10} {status.schema:<8} {status.position:>22,} {status.lag_events:>12,}"
        f" {status.lag_seconds:>10.1f} {status.state}"
    ]
    if status.state == "failed":
        lines.append(f"  stopped at position {status.failed_position}: {status.error}")
    if status.rebuild_requested:
        lines.append("  rebuild requested")
    rebuild = status.rebuild
    if rebuild is not None:
        share = 100 * rebuild.done / rebuild.total if rebuild.total else 100.0
        eta = f"ETA {rebuild.eta_seconds:.0f} s" if rebuild.eta_seconds is not None else ""
        how = "running" if rebuild.running else "interrupted: run the rebuild again to resume"
        if rebuild.state == "failed":
            how = f"failed: {rebuild.error}"
        lines.append(
            f"  rebuild: {rebuild.done:,}/{rebuild.total:,} ({share:.0f} %)"
            f"  {rebuild.events_per_second:,.0f} events/s {eta} [{how}]"
        )
    return lines


async def _status(settings: Settings) -> list[GroupStatus]:
    async with await AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
        return [await group_status(conn, group) for group in projection_groups()]


def run_status(settings: Settings, _: argparse.Namespace) -> int:
    """Print each group's position, lag, state and rebuild progress."""
    settings.require_servers()
    print(f"{'group':<10} {'schema':<8} {'position':>22} {'lag events':>12} {'lag s':>10} state")
    for status in asyncio.run(_status(settings)):
        print("\n".join(status_lines(status)))
    return 0


def run_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild a group (named, or holding the named projection) with a progress bar."""
    settings.require_servers()
    try:
        group = find_group(projection_groups(), args.name)
    except DomainError as error:
        print(f"pms projections rebuild: {error}", file=sys.stderr)
        return 1
    bar: list[ProgressLine] = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(ProgressLine(f"rebuilding {group.name}", total))
        bar[0].total = max(total, 1)
        bar[0](done)

    store = EventStore.connect(settings)
    rebuild = Rebuild(group, store, settings.database_url, progress=progress)
    try:
        result = uvloop.run(rebuild.run(restart=args.restart))
    except (RebuildFailed, DomainError) as error:
        print(f"\npms projections rebuild: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        store.close()
    if bar:
        bar[0].finish(result.events)
    carried = ", ".join(p.name for p in rebuild.carried)
    print(
        f"rebuilt {result.group}: {result.events:,} events in {result.seconds:.1f} s"
        f" ({result.events_per_second:,.0f} events/s), switched at position {result.position}"
        + (f"; carried over without rebuilding: {carried}" if carried else "")
    )
    return 0
