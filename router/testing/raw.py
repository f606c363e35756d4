"""Raw-socket HTTP clients for tests of the router's HTTP edge: clients that send their
request a byte at a time, too much of it, or nothing, which no HTTP library does on purpose;
and raw upstreams (`raw_server`) that answer what no HTTP server would.

    sock = connect(port)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\\r\\nhost: x\\r\\n")
    status, headers, body = read_answer(sock)   # once the server has answered and closed

    crowd = SlowCrowd(port, 300, head)           # 300 connections trickling `head`
    threading.Thread(target=crowd.run).start(); crowd.ready.wait()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from router.testing.closing import closed_after_test


@contextlib.contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A server on 127.0.0.1 that hands each connection to `answer` in a thread of its own
    (and closes it after); yields its base URL, and stops accepting when the block ends."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            answer(conn)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed: the test is over
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    """A loopback connection whose every `send` leaves at once (no Nagle delay)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return closed_after_test(sock)  # (closing it twice is harmless)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-case headers, body) of the one answer on `sock`, read until the server
    closes its side."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def read_kept_alive_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-case headers, body) of the next answer on a connection the server
    keeps open: read up to the end of its `content-length` body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection before answering")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        body += chunk
    return int(lines[0].split()[1]), headers, body


def chat_head(key: str, body_length: int | None = None, extra: bytes = b"") -> bytes:
    """The head of a chat completions POST with client key `key`: a `content-length` when
    `body_length` is given, and `extra` header lines before the blank line."""
    length = b"" if body_length is None else b"content-length: %d\r\n" % body_length
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"authorization: Bearer " + key.encode() + b"\r\n"
        b"content-type: application/json\r\n" + length + extra + b"\r\n"
    )


def chat_body(model: str = "chat") -> bytes:
    """A small chat completions body for `model`."""
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hello"}]})


def dropped_total(router: Any, reason: str) -> float:
    """`llm_router_connections_dropped_total{reason=...}` of a served router (its `url`)."""
    text = httpx.get(router.url + "/metrics").text
    match = re.search(
        rf'^llm_router_connections_dropped_total{{reason="{reason}"}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else 0.0


def assert_refused(status: int, headers: dict[str, str], body: bytes, want: int, code: str) -> str:
    """An answer that refuses a client and closes its connection: status `want`, an OpenAI
    error of `code`; its message."""
    assert status == want, body
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    return str(error["message"])


@dataclass
class SlowClient:
    opened: float = 0.0  # time.monotonic() just before it connected
    answered: float | None = None  # when the first line of an answer arrived
    status: int | None = None
    error: str | None = None


@dataclass
class SlowCrowd:
    """`count` connections, each sending `head` a byte every `every` seconds until the server
    answers or closes; `run` them in a thread of their own (they have their own event loop)
    and wait for `ready` (all of them connecting) before measuring anything."""

    port: int
    count: int
    head: bytes
    every: float = 0.25
    clients: list[SlowClient] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        asyncio.run(self._all())

    async def _all(self) -> None:
        tasks = [asyncio.create_task(self._one(SlowClient())) for _ in range(self.count)]
        while len(self.clients) < self.count:
            await asyncio.sleep(0.01)
        self.ready.set()
        await asyncio.gather(*tasks)

    async def _one(self, client: SlowClient) -> None:
        client.opened = time.monotonic()  # (the server cannot have accepted it earlier)
        self.clients.append(client)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            client.error = repr(exc)
            return

        async def trickle() -> None:
            for i in range(len(self.head)):
                writer.write(self.head[i : i + 1])
                await asyncio.sleep(self.every)

        sender = asyncio.create_task(trickle())
        try:
            first = await reader.readline()
            client.answered = time.monotonic()
            client.status = int(first.split()[1]) if first else None
            await reader.read()  # until the server closes
        except OSError as exc:
            client.error = repr(exc)
        finally:
            sender.cancel()
            writer.close()


__all__ = [
    "SlowClient",
    "SlowCrowd",
    "assert_refused",
    "chat_body",
    "chat_head",
    "connect",
    "dropped_total",
    "read_answer",
    "read_kept_alive_answer",
]
