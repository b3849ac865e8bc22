"""The embedded servers start from their wheels, answer for real, keep data and stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import nats
import psycopg
import pytest
import redis

from workers import embedded
from workers.embedded import EmbeddedServices


def _postgres_only(data_dir: Path) -> EmbeddedServices:
    return EmbeddedServices(data_dir, nats=False, redis=False)


def _query(database_url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(statement).fetchall()


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Whether pid runs; an exited child of PID 1 may linger as a zombie until it is reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _start_in_another_process(data_dir: Path, setup: str, then: str) -> list[int]:
    """Start the servers from a separate Python process that then runs `then`; their pids."""
    script = textwrap.dedent(
        f"""
        import os, time
        from pathlib import Path
        from workers import embedded
        {setup}
        services = embedded.EmbeddedServices(Path({str(data_dir)!r}))
        services.start()
        print(" ".join(str(s.process.pid) for s in services._servers), flush=True)
        {then}
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == 3
    parent.kill()  # a no-op when it already exited
    parent.wait()
    return pids


async def _publish_to_jetstream(url: str) -> int:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        await js.add_stream(name="EMBEDDED", subjects=["embedded.>"])
        ack = await js.publish("embedded.hello", b"hi")
        return ack.seq
    finally:
        await client.close()


def test_all_three_servers_answer_and_stop_cleanly(tmp_path: Path) -> None:
    services = EmbeddedServices(tmp_path)
    urls = services.start()
    pids = [server.process.pid for server in services._servers]
    try:
        assert urls.database_url.endswith("/pms")
        assert all(f":{port}" not in str(urls) for port in (5432, 4222, 6379))
        assert _query(urls.database_url, "SELECT 1") == [(1,)]
        assert _query(urls.database_url, "SHOW max_connections") == [("200",)]
        assert _query(urls.database_url, "SHOW fsync") == [("on",)]
        assert asyncio.run(_publish_to_jetstream(urls.nats_url)) == 1
        with redis.Redis.from_url(urls.redis_url) as client:
            assert client.ping()
            client.set("greeting", "hello")
            assert client.get("greeting") == b"hello"
    finally:
        services.stop()
    services.stop()  # idempotent
    assert len(pids) == 3
    assert not any(_alive(pid) for pid in pids)
    assert not any(_port_open(url) for url in (urls.database_url, urls.nats_url, urls.redis_url))
    logs = {path.name for path in (tmp_path / "logs").iterdir()}
    assert logs == {"postgres.log", "nats.log", "redis.log"}


@pytest.mark.parametrize("server", ["postgres", "nats", "redis"])
def test_a_port_taken_before_the_server_binds_it_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    """Another process takes the free port we picked before the server binds it: the server
    starts again on another one (a busy machine, or several test runs at once)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        picks = iter([busy])
        free_port = embedded._free_port
        monkeypatch.setattr(embedded, "_free_port", lambda: next(picks, None) or free_port())
        only = {name: name == server for name in ("postgres", "nats", "redis")}
        with EmbeddedServices(tmp_path, **only) as urls:
            url = {"postgres": urls.database_url, "nats": urls.nats_url, "redis": urls.redis_url}
            assert urlsplit(url[server]).port != busy
            assert _port_open(url[server])
    log = (tmp_path / "logs" / f"{server}.log").read_text(errors="replace").lower()
    assert "address already in use" in log


def test_a_second_start_on_the_same_directory_keeps_the_data(tmp_path: Path) -> None:
    with _postgres_only(tmp_path) as urls:
        assert (urls.nats_url, urls.redis_url) == ("", "")
        with psycopg.connect(urls.database_url) as conn:
            conn.execute("CREATE TABLE kept (note text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
    with _postgres_only(tmp_path) as urls:
        assert _query(urls.database_url, "SELECT note FROM kept") == [("still here",)]


@pytest.mark.parametrize("content", ["{dead_pid}\n{pgdata}\n", "", "garbage\n"])
def test_a_stale_pid_file_from_a_crashed_run_is_removed(tmp_path: Path, content: str) -> None:
    with _postgres_only(tmp_path):
        pass
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pgdata = tmp_path / "postgres"
    (pgdata / "postmaster.pid").write_text(content.format(dead_pid=dead.pid, pgdata=pgdata))
    with _postgres_only(tmp_path) as urls:
        assert _query(urls.database_url, "SELECT 1") == [(1,)]


def test_a_server_that_another_live_process_runs_is_reported(tmp_path: Path) -> None:
    with _postgres_only(tmp_path), pytest.raises(RuntimeError, match="already serves"):
        _postgres_only(tmp_path).start()


def test_servers_die_when_the_parent_is_killed(tmp_path: Path) -> None:
    pids = _start_in_another_process(tmp_path, setup="", then="time.sleep(60)")
    assert all(_wait_gone(pid) for pid in pids)
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()


def test_a_server_orphaned_by_a_crashed_run_is_stopped_first(tmp_path: Path) -> None:
    no_pdeathsig = "embedded._die_with_parent = lambda signal: lambda: None"
    orphans = _start_in_another_process(tmp_path, setup=no_pdeathsig, then="os._exit(0)")
    try:
        assert all(_alive(pid) for pid in orphans)
        if Path(f"/proc/{orphans[-1]}/stat").read_text().rsplit(")", 1)[1].split()[1] != "1":
            pytest.skip("a subreaper adopted the orphan, so it looks owned and is reported")
        with _postgres_only(tmp_path) as urls:
            assert _query(urls.database_url, "SELECT 1") == [(1,)]
            postmaster = orphans[-1]  # postgres is launched last
            assert not _alive(postmaster)
    finally:
        for pid in orphans:  # nats and redis, started by this test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
