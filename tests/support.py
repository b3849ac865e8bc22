"""Running PMS processes (API, relay, projector) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from application.settings import Settings


@dataclass
class PmsProcess:
    """One `python -m workers <command>` child process."""

    command: str
    settings: Settings
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> PmsProcess:
        """Spawn the process."""
        env = {**os.environ, **self.settings.as_env(), **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers", self.command, *self.extra_args], env=env
        )
        return self

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        self._signal(signal.SIGKILL)

    def _signal(self, signum: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signum)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_for_api(base_url: str, process: PmsProcess, timeout: float = 30.0) -> None:
    """Block until GET /health answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.process is not None
        if process.process.poll() is not None:
            raise RuntimeError(f"api exited with {process.process.returncode}")
        try:
            httpx.get(f"{base_url}/health", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("api did not start")


def login(base_url: str, email: str, password: str) -> dict[str, str]:
    """Authorization headers for a user."""
    answer = httpx.post(
        f"{base_url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=10
    )
    answer.raise_for_status()
    token: Any = answer.json()["accessToken"]
    return {"Authorization": f"Bearer {token}"}


def sign_in(base_url: str, email: str, password: str, **headers: str) -> httpx.Response:
    """POST /auth/login, whatever the answer."""
    return httpx.post(
        f"{base_url}/api/v1/auth/login",
        json={"email": email, "password": password},
        headers=headers,
        timeout=10,
    )


def bearer(token: str) -> dict[str, str]:
    """Authorization headers for an access token."""
    return {"Authorization": f"Bearer {token}"}
