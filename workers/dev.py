"""`pms dev`: the whole system on one machine, embedded servers unless URLs are given."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from application.identity import FirstAdmin, ensure_admin
from application.settings import Settings
from application.store import EventStore
from workers.embedded import EmbeddedServices
from workers.migrate import migrate

STOP_TIMEOUT = 10.0


def persisted_secret(settings: Settings, given: str, name: str) -> str:
    """`given`, or a secret generated once and kept under the data directory as `name`."""
    if given:
        return given
    path = settings.data_dir / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def write_services_env(settings: Settings) -> Path:
    """Write the server URLs for operators (psql, nats, redis-cli) to services.env."""
    path = settings.data_dir / "services.env"
    path.write_text(
        f"PMS_DATABASE_URL={settings.database_url}\n"
        f"PMS_NATS_URL={settings.nats_url}\n"
        f"PMS_REDIS_URL={settings.redis_url}\n"
    )
    return path


def _prepare(settings: Settings) -> FirstAdmin:
    store = EventStore.connect(settings)
    try:
        migrate(store, settings.database_url)
        return ensure_admin(store, settings.admin_email, settings.admin_password)
    finally:
        store.close()


def _spawn(command: str, settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.as_env()}
    return subprocess.Popen([sys.executable, "-m", "workers", command], env=env)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not answer {url} within {timeout:.0f} s")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_dev(settings: Settings) -> int:
    """Start servers, migrate, start the API and workers; stop everything on Ctrl-C."""
    # Explicit handlers: a shell may start us with SIGINT ignored, and SIGTERM must clean up too.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedServices(
        settings.data_dir,
        postgres=not settings.database_url,
        nats=not settings.nats_url,
        redis=not settings.redis_url,
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        urls = embedded.start()
        settings = settings.with_changes(
            database_url=settings.database_url or urls.database_url,
            nats_url=settings.nats_url or urls.nats_url,
            redis_url=settings.redis_url or urls.redis_url,
        )
        settings = settings.with_changes(
            jwt_secret=persisted_secret(settings, settings.jwt_secret, "jwt-secret"),
            audit_key=persisted_secret(settings, settings.audit_key, "audit-key"),
        )
        env_file = write_services_env(settings)
        print(f"PostgreSQL  {settings.database_url}")
        print(f"NATS        {settings.nats_url}")
        print(f"Redis       {settings.redis_url}")
        print(f"(written to {env_file})")
        admin = _prepare(settings)
        processes.append(_spawn("worker", settings))
        api = _spawn("api", settings)
        processes.append(api)
        base = f"http://{settings.host}:{settings.port}"
        _wait_healthy(f"{base}/health", api)
        print(f"\nPMS is running at {base}  (docs: {base}/schema)")
        if admin.password:
            print(f"First admin: {admin.email} / {admin.password}   (shown once; change it)")
        else:
            print(f"Admin: {admin.email}")
        print("Press Ctrl-C to stop.\n", flush=True)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("a PMS process exited; stopping everything", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"pms dev: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(processes)
        embedded.stop()
