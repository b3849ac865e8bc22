"""A small HTTP/1.1 keep-alive client on raw asyncio streams, and two bounded load loops.

httpx costs a few hundred microseconds of CPU per request, which on 2 cores is taken from the
server being measured; this client costs a few tens. Requests are pre-encoded bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

POSITION_HEADER = b"x-pms-position"


def encode_request(
    method: str, path: str, token: str, body: Any = None, *, host: str = "127.0.0.1"
) -> bytes:
    """One request as bytes (JSON body when given)."""
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass
class Answer:
    """What came back."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        """The body decoded."""
        return json.loads(self.body)

    @property
    def position(self) -> int:
        """The X-PMS-Position header (0 when absent)."""
        return int(self.headers.get(POSITION_HEADER, b"0"))


class Connection:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> Answer:
        """Send a pre-encoded request and read the whole answer."""
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = await _read_chunked(reader)
        else:
            body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return Answer(status, headers, body)

    async def close(self) -> None:
        """Close the socket."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._reader = None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def call(host: str, port: int, raw: bytes) -> Answer:
    """One request on a fresh connection."""
    connection = Connection(host, port)
    try:
        return await connection.request(raw)
    finally:
        await connection.close()


async def run_all(
    host: str, port: int, requests: Sequence[bytes], concurrency: int
) -> list[Answer]:
    """Send every request, `concurrency` at a time; answers in request order."""
    answers: list[Answer | None] = [None] * len(requests)
    indexes = iter(range(len(requests)))

    async def worker() -> None:
        connection = Connection(host, port)
        try:
            for index in indexes:
                answers[index] = await connection.request(requests[index])
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [answer for answer in answers if answer is not None]


@dataclass
class Window:
    """One measurement window of a closed-loop run."""

    started: float
    ended: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """How long the window lasted."""
        return self.ended - self.started

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0


async def closed_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    warmup: float,
    window: float,
    windows: int,
) -> list[Window]:
    """`concurrency` clients send back to back: a warm-up, then `windows` measured windows.

    A request counts in the window in which its answer arrived; 2xx are successes, anything
    else is counted per status.
    """
    cycle: Iterator[bytes] = itertools.cycle(requests)
    stop = asyncio.Event()
    current: list[Window | None] = [None]  # None during warm-up

    async def client() -> None:
        connection = Connection(host, port)
        try:
            while not stop.is_set():
                raw = next(cycle)
                started = time.perf_counter()
                answer = await connection.request(raw)
                ended = time.perf_counter()
                target = current[0]
                if target is None:
                    continue
                if 200 <= answer.status < 300:
                    target.latencies.append(ended - started)
                else:
                    target.errors[answer.status] = target.errors.get(answer.status, 0) + 1
        finally:
            await connection.close()

    tasks = [asyncio.create_task(client()) for _ in range(concurrency)]
    measured: list[Window] = []
    try:
        await _sleep_or_fail(warmup, tasks)
        for _ in range(windows):
            opened = Window(started=time.perf_counter())
            current[0] = opened
            await _sleep_or_fail(window, tasks)
            opened.ended = time.perf_counter()
            current[0] = Window(started=opened.ended)  # answers after the end go nowhere
            measured.append(opened)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return measured


async def _sleep_or_fail(seconds: float, tasks: list[asyncio.Task[None]]) -> None:
    """Sleep, but raise at once if a client failed (a refused connection, a reset)."""
    done, _ = await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        task.result()


@dataclass
class Sent:
    """One request of an open-loop run."""

    scheduled: float
    answered: float
    status: int
    position: int


async def open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float,
    seconds: float,
    max_in_flight: int,
) -> list[Sent]:
    """Send at a fixed rate for `seconds`, at most `max_in_flight` at once (then it waits)."""
    cycle: Iterator[bytes] = itertools.cycle(requests)
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(max_in_flight):
        free.put_nowait(Connection(host, port))
    sent: list[Sent] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(connection: Connection, raw: bytes, scheduled: float) -> None:
        try:
            answer = await connection.request(raw)
            sent.append(Sent(scheduled, time.perf_counter(), answer.status, answer.position))
        finally:
            free.put_nowait(connection)

    started = time.perf_counter()
    count = int(rate * seconds)
    for index in range(count):
        scheduled = started + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        connection = await free.get()
        task = asyncio.create_task(one(connection, next(cycle), scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    while not free.empty():
        await free.get_nowait().close()
    return sent
