"""The `pms` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from application.settings import Settings, SettingsError
from workers.gc_tuning import tune_collector

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _run_dev(settings: Settings, _: argparse.Namespace) -> int:
    from workers.dev import run_dev

    return run_dev(settings)


def _run_api(settings: Settings, _: argparse.Namespace) -> int:
    from workers.api_server import serve

    settings.require_servers()
    return serve(settings)


def _run_worker(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop

    from workers.runner import run_workers

    settings.require_servers()
    chosen = getattr(args, "group", None)
    groups = tuple(chosen) if chosen else None
    relay = args.command in ("worker", "relay")
    if args.command == "relay":
        groups = ()
    uvloop.run(run_workers(settings, relay=relay, groups=groups))
    return 0


def _run_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from application.identity import ensure_admin
    from application.store import EventStore
    from workers.migrate import migrate

    settings.require_servers()
    store = EventStore.connect(settings)
    try:
        migrate(store, settings.database_url)
        admin = ensure_admin(store, settings.admin_email, settings.admin_password)
    finally:
        store.close()
    print("database migrated")
    if admin.password:
        print(f"first admin: {admin.email} / {admin.password}")
    return 0


def _run_audit(settings: Settings, args: argparse.Namespace) -> int:
    from workers.audit_cli import run_export, run_verify

    return (
        run_verify(settings, args) if args.audit_command == "verify" else run_export(settings, args)
    )


def _run_projections(settings: Settings, args: argparse.Namespace) -> int:
    from workers.projections_cli import run_rebuild, run_status

    command = run_status if args.projections_command == "status" else run_rebuild
    return command(settings, args)


COMMANDS: dict[str, tuple[str, Callable[[Settings, argparse.Namespace], int]]] = {
    "dev": ("start everything on this machine (embedded servers unless URLs are set)", _run_dev),
    "api": ("run the HTTP API", _run_api),
    "worker": ("run the relay and every projector group", _run_worker),
    "relay": ("run only the relay", _run_worker),
    "projector": ("run only projector groups (all, or --group NAME)", _run_worker),
    "migrate": ("create or update tables and the first admin", _run_migrate),
    "audit": ("verify the tamper evidence or export the event log as NDJSON", _run_audit),
    "projections": (
        "projection groups: status, or rebuild one while it keeps serving",
        _run_projections,
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `pms`."""
    parser = argparse.ArgumentParser(prog="pms", description="PMS backend")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if name == "projector":
            command.add_argument("--group", action="append", help="projection group to run")
        if name == "audit":
            audit = command.add_subparsers(dest="audit_command", required=True)
            audit.add_parser("verify", help="check every hash chain and seal")
            export = audit.add_parser("export", help="write events as NDJSON")
            export.add_argument("--after", type=int, default=0, help="start after this position")
            export.add_argument("--until", type=int, default=None, help="stop at this position")
            export.add_argument("--output", help="file to write (default: stdout)")
        if name == "projections":
            projections = command.add_subparsers(dest="projections_command", required=True)
            projections.add_parser("status", help="position, lag, state and rebuild progress")
            rebuild = projections.add_parser("rebuild", help="rebuild a group from the store")
            rebuild.add_argument("name", help="a projection group, or a projection in it")
            rebuild.add_argument(
                "--restart", action="store_true", help="start over instead of resuming"
            )
    args = parser.parse_args(argv)
    tune_collector()
    try:
        settings = Settings.from_env()
        logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
        return COMMANDS[args.command][1](settings, args)
    except (SettingsError, OSError) as exc:
        print(f"pms {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
