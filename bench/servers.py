"""Servers, databases and PMS processes for a benchmark run.

Embedded PostgreSQL, NATS and Redis are started as `make test` does, unless PMS_BENCH_DATABASE_URL,
PMS_BENCH_NATS_URL or PMS_BENCH_REDIS_URL name existing ones. Each phase gets a fresh database on
that server (dropped at the end); the bench deletes and recreates the JetStream streams it uses.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import nats
import psycopg
from nats.js.errors import NotFoundError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from application.identity import ensure_admin
from application.settings import Settings
from application.store import EventStore
from bench.report import Results
from workers.embedded import EmbeddedServices, ServiceUrls
from workers.migrate import migrate, read_side_ddl
from workers.streams import CHANGES_STREAM

ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-admin-password"
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BenchServers:
    """The servers of one run, and the databases created on them."""

    def __init__(self, workdir: Path, given: ServiceUrls | None = None) -> None:
        """Servers named by `given` (else PMS_BENCH_*_URL) are used; the others are embedded."""
        self.workdir = workdir
        self.given = given or ServiceUrls(
            database_url=os.environ.get("PMS_BENCH_DATABASE_URL", ""),
            nats_url=os.environ.get("PMS_BENCH_NATS_URL", ""),
            redis_url=os.environ.get("PMS_BENCH_REDIS_URL", ""),
        )
        self._embedded = EmbeddedServices(
            workdir / "servers",
            postgres=not self.given.database_url,
            nats=not self.given.nats_url,
            redis=not self.given.redis_url,
        )
        self.urls = self.given
        self._databases: list[str] = []
        self.jwt_secret = secrets.token_urlsafe(32)

    def __enter__(self) -> BenchServers:
        started = self._embedded.start()
        self.urls = ServiceUrls(
            database_url=self.given.database_url or started.database_url,
            nats_url=self.given.nats_url or started.nats_url,
            redis_url=self.given.redis_url or started.redis_url,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with contextlib.suppress(psycopg.Error):
            for name in self._databases:
                with psycopg.connect(self.urls.database_url, autocommit=True) as connection:
                    connection.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
        self._embedded.stop()

    def describe(self) -> dict[str, str]:
        """Which servers this run used."""
        return {
            "postgres": "given" if self.given.database_url else "embedded",
            "nats": "given" if self.given.nats_url else "embedded",
            "redis": "given" if self.given.redis_url else "embedded",
            "postgres_version": self.postgres_version(),
        }

    def postgres_version(self) -> str:
        """`server_version` of the PostgreSQL server."""
        with psycopg.connect(self.urls.database_url) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def new_database(self, label: str) -> str:
        """A fresh database on the server; its URL."""
        name = f"pms_bench_{label}_{secrets.token_hex(3)}"
        with psycopg.connect(self.urls.database_url, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._databases.append(name)
        params = conninfo_to_dict(self.urls.database_url)
        params["dbname"] = name
        return make_conninfo(**params)  # type: ignore[arg-type]

    def settings(
        self, database_url: str, *, event_store: str = "xid", api_workers: int = 1
    ) -> Settings:
        """Settings for PMS processes on `database_url`."""
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        return Settings(
            database_url=database_url,
            nats_url=self.urls.nats_url,
            redis_url=self.urls.redis_url,
            port=free_port(),
            data_dir=data_dir,
            jwt_secret=self.jwt_secret,
            admin_email=ADMIN_EMAIL,
            admin_password=ADMIN_PASSWORD,
            log_level="WARNING",
            access_token_ttl_seconds=3600,
            min_position_wait_seconds=10.0,
            api_workers=api_workers,
            event_store=event_store,
            # Limited, so the limiter's Redis round trip is paid as in production, but never
            # reached: the load generator is a single caller.
            rate_limit_per_minute=10**9,
        )


def prepare_database(settings: Settings) -> None:
    """`pms migrate` for the xid store; its equivalent for the stock recorder's table shape."""
    store = EventStore.connect(settings)
    try:
        if settings.event_store == "stock":
            # workers.migrate refuses any recorder but ours; the read side is the same.
            store.app.recorder.create_table()  # type: ignore[attr-defined]
            store.create_snapshot_table()
            with psycopg.connect(settings.database_url, autocommit=True) as connection:
                for statement in read_side_ddl():
                    connection.execute(statement)
        else:
            migrate(store, settings.database_url)
        ensure_admin(store, settings.admin_email, settings.admin_password)
    finally:
        store.close()


async def reset_streams(nats_url: str, events_stream: str) -> None:
    """Delete the JetStream streams (and so their consumers); the workers recreate them."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        for name in (events_stream, CHANGES_STREAM):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await client.close()


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM the child when the bench dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)


@dataclass
class PmsProcess:
    """One `python -m workers <command>` child, its output in a log file."""

    command: str
    settings: Settings
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None  # another source tree (A/B runs); default: this one
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Where the process writes its output."""
        return self.log_dir / f"{self.command}-{self.settings.port}.log"

    def start(self) -> PmsProcess:
        """Spawn it."""
        env = {**os.environ, **self.settings.as_env(), **self.extra_env}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "workers", self.command],
                env=env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        return self

    @property
    def python(self) -> str:
        """The other tree's own environment when it has one (its dependencies may differ),
        else this interpreter."""
        if self.cwd is not None and (self.cwd / ".venv/bin/python").exists():
            return str(self.cwd / ".venv/bin/python")
        return sys.executable

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after a while)."""
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def failure(self, problem: str) -> RuntimeError:
        """An error naming the problem, with the end of the log."""
        tail = self.log_path.read_text(errors="replace").splitlines()[-25:]
        return RuntimeError("\n".join([f"pms {self.command} {problem}; end of log:", *tail]))

    def wait_healthy(self, timeout: float = 60.0) -> str:
        """For `api`: block until GET /health answers; the base URL."""
        base = f"http://127.0.0.1:{self.settings.port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise self.failure("exited")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    return base
            except urllib.error.HTTPError:
                return base  # 503 still means it serves
            except OSError:
                time.sleep(0.1)
        raise self.failure(f"did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def running(*processes: PmsProcess) -> Iterator[tuple[PmsProcess, ...]]:
    """Start processes, stop them (in reverse) on exit."""
    started: list[PmsProcess] = []
    try:
        for process in processes:
            started.append(process.start())
        yield processes
    finally:
        for process in reversed(started):
            process.stop()


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (Linux /proc)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    queue.extend(int(c) for c in (task / "children").read_text().split())
    return found


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _role(pid: int, root_label: str, root: int) -> str | None:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    if "resource_tracker" in cmdline:
        return None  # multiprocessing's helper, not a PMS process
    return root_label if pid == root else f"{root_label} child"


class MemorySampler:
    """Samples the RSS of PMS processes and their children every 0.2 s; keeps each peak."""

    def __init__(self, processes: dict[str, PmsProcess], interval: float = 0.2) -> None:
        self.processes = processes
        self.interval = interval
        self.peaks: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        """One sample of every process."""
        for label, process in self.processes.items():
            if not process.alive():
                continue
            for pid in descendants(process.pid):
                role = _role(pid, label, process.pid)
                if role is not None:
                    key = (role, pid)
                    self.peaks[key] = max(self.peaks.get(key, 0.0), rss_mb(pid))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def peak_by_role(self) -> dict[str, float]:
        """The largest peak per role (e.g. `api`, `api child`, `worker`)."""
        roles: dict[str, float] = {}
        for (role, _), value in self.peaks.items():
            roles[role] = max(roles.get(role, 0.0), value)
        return roles


def workdir() -> tempfile.TemporaryDirectory[str]:
    """A scratch directory for the embedded servers, logs and data."""
    return tempfile.TemporaryDirectory(prefix="pms-bench-")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds of a process, and of its children that ended and that it waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0, 0.0
    ticks = [int(value) for value in fields[11:15]]  # utime, stime, cutime, cstime
    return (ticks[0] + ticks[1]) / _CLOCK_TICKS, (ticks[2] + ticks[3]) / _CLOCK_TICKS


def _busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def _kind(pid: int, own: int) -> str:
    if pid == own:
        return "bench"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    for needle, kind in (
        ("postgres", "postgres"),
        ("nats-server", "nats"),
        ("redis-server", "redis"),
        ("workers api", "api"),
        ("multiprocessing", "api"),  # uvicorn's worker processes
        ("workers worker", "worker"),
        ("workers relay", "worker"),
        ("workers projector", "worker"),
    ):
        if needle in cmdline:
            return kind
    return "other"


class CpuMeter:
    """CPU used during a block, per kind of process of this run, and by everything else.

    Figures are percent of one core. A process that ended within the block counts for the
    process that waited for it: PostgreSQL's backends for postgres, and the workers the bench
    started and stopped (the catch-up's relay, projector and rebuilds) as "exited". "foreign"
    is what other programs on the machine used: high values mean the figures of that block
    were measured on a busy machine. With PMS_BENCH_DATABASE_URL etc., those servers count as
    foreign.
    """

    def __init__(self) -> None:
        self.usage: dict[str, float] = {}
        self.cpu_seconds = 0.0  # what this run's processes used during the block
        self.seconds = 0.0

    def _ours(self) -> dict[int, tuple[float, float]]:
        return {pid: _process_seconds(pid) for pid in descendants(os.getpid())}

    def __enter__(self) -> CpuMeter:
        self._started = time.perf_counter()
        self._busy = _busy_seconds()
        self._before = self._ours()
        return self

    def __exit__(self, *exc_info: object) -> None:
        seconds = time.perf_counter() - self._started
        after = self._ours()
        kinds: dict[str, float] = {}
        own = os.getpid()
        for pid, (used, waited) in after.items():
            kind = _kind(pid, own)
            used_before, waited_before = self._before.get(pid, (0.0, 0.0))
            kinds[kind] = kinds.get(kind, 0.0) + used - used_before
            reaped = "exited" if pid == own else kind
            kinds[reaped] = kinds.get(reaped, 0.0) + waited - waited_before
        ours = sum(kinds.values())
        kinds["foreign"] = max(0.0, _busy_seconds() - self._busy - ours)
        self.cpu_seconds, self.seconds = ours, seconds
        self.usage = {k: round(v / seconds * 100) for k, v in kinds.items() if v > 0.005}

    def add_per_operation(
        self, results: Results, key: str, label: str, rate: float, unit: str = "ms"
    ) -> None:
        """Record what this run's processes used per operation, at `rate` operations/s over
        the block: what bounds that operation's rate on these cores."""
        if rate > 0 and self.cores_busy > 0:
            per_second = {"ms": 1e3, "µs": 1e6}[unit]
            label = f"{label} (all processes)"
            results.add(key, label, unit, self.cores_busy / rate * per_second, usage=self.usage)

    @property
    def cores_busy(self) -> float:
        """How many cores this run's processes kept busy on average: not other programs, nor
        servers given by URL (whose CPU is then left out of the per-operation figures)."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0
