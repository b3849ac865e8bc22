"""`pms api`: one or several uvicorn processes serving the API on one port.

Every process binds the port itself with SO_REUSEPORT, so the kernel spreads new connections
across them. (Processes accepting from one shared socket do not share fairly: with keep-alive
clients, the first process to wake up can take nearly every connection while the others idle.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

from application.settings import Settings

CHILD_ENV = "PMS_API_PROCESS"  # set in the processes the supervisor starts
STOP_SECONDS = 15.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port that other processes of ours may bind as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port (SO_REUSEPORT would otherwise share it silently
    with, say, an API left running from an earlier start)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def serve_process(settings: Settings) -> None:
    """Serve the API in this process until SIGINT or SIGTERM."""
    import uvicorn

    config = uvicorn.Config(
        "api.app:create_app",
        factory=True,
        loop="uvloop",
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    uvicorn.Server(config).run(sockets=[listening_socket(settings.host, settings.port)])


def serve(settings: Settings) -> int:
    """Serve the API with `settings.api_workers` processes; stop them all on SIGINT/SIGTERM,
    and all of them (exiting with its code) when one of them exits on its own."""
    if os.environ.get(CHILD_ENV):
        serve_process(settings)
        return 0
    if not port_is_free(settings.host, settings.port):
        print(f"pms api: {settings.host}:{settings.port} is already in use", file=sys.stderr)
        return 1
    if settings.api_workers <= 1:
        serve_process(settings)
        return 0
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "workers", "api"], env={**os.environ, CHILD_ENV: str(n)}
        )
        for n in range(settings.api_workers)
    ]
    code = 0
    while not stopping:
        exited = [child for child in children if child.poll() is not None]
        if exited:
            code = exited[0].returncode or 1
            print(f"pms api: a server process exited ({code}); stopping", file=sys.stderr)
            break
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return code
