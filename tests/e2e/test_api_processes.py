"""`pms api` with several processes: each accepts its share of connections on the one port,
they stop together, and a port already in use is refused rather than shared."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from conftest import free_port
from support import PmsProcess, wait_for_api

from application.settings import Settings


def _established(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local port is `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                found.add(inode)
    return found


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _sockets(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink()) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def test_two_api_processes_share_the_connections_and_stop_together(settings: Settings) -> None:
    chosen = settings.with_changes(port=free_port(), api_workers=2)
    process = PmsProcess("api", chosen).start()
    clients: list[socket.socket] = []
    try:
        wait_for_api(f"http://127.0.0.1:{chosen.port}", process)
        assert process.process is not None
        servers = _children(process.process.pid)
        assert len(servers) == 2
        for _ in range(32):
            client = socket.create_connection(("127.0.0.1", chosen.port))
            client.sendall(b"GET /health HTTP/1.1\r\nHost: pms\r\n\r\n")
            clients.append(client)
        for client in clients:
            assert client.recv(12).startswith(b"HTTP/1.1")
        connections = _established(chosen.port)
        shares = [len(_sockets(pid) & connections) for pid in servers]
        assert sum(shares) == 32
        assert min(shares) > 0, shares  # the kernel spreads them: both processes serve

        # A second API on the same port is refused, not let in beside the first.
        second = PmsProcess("api", chosen.with_changes(api_workers=1)).start()
        assert second.process is not None
        assert second.process.wait(30) == 1
    finally:
        for client in clients:
            client.close()
        process.stop()
    assert process.process.returncode == 0
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in servers):
        assert time.monotonic() < deadline, "a server process outlived pms api"
        time.sleep(0.1)
