"""A small streaming load client: `concurrency` keep-alive connections, each posting a
streaming chat request again and again for `duration` seconds.

It timestamps the send, the first body bytes that carry non-empty `content` (time to first
token) and the end of the response (total), and counts as an error any non-200 answer, a
stream without `[DONE]`, or a dropped connection. Raw asyncio + httptools + uvloop, so that
the client costs little next to the proxy under test. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time

import httptools
import orjson
import uvloop

CONTENT = re.compile(rb'"content":\s*"[^"]')


class _Response:
    def __init__(self) -> None:
        self.seen = b""
        self.tail = b""
        self.first: float | None = None
        self.done = False
        self.finished = asyncio.get_running_loop().create_future()

    def on_body(self, body: bytes) -> None:
        if self.first is None:
            self.seen += body
            if CONTENT.search(self.seen):
                self.first = time.perf_counter()
        joined = self.tail + body
        if b"[DONE]" in joined:
            self.done = True
        self.tail = joined[-16:]

    def on_message_complete(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.response: _Response | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def start(self, response: _Response) -> None:
        self.response = response
        self.parser = httptools.HttpResponseParser(response)

    def data_received(self, data: bytes) -> None:
        assert self.parser is not None and self.response is not None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not self.response.finished.done():
                self.response.finished.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.response is not None and not self.response.finished.done():
            self.response.finished.set_exception(ConnectionError("connection lost"))


async def _worker(host: str, port: int, request: bytes, until: float, out: dict) -> None:
    loop = asyncio.get_running_loop()
    conn: _Conn | None = None
    while time.perf_counter() < until:
        try:
            if conn is None or conn.lost.done():
                _, conn = await loop.create_connection(_Conn, host, port)
            response = _Response()
            conn.start(response)
            sent = time.perf_counter()
            assert conn.transport is not None
            conn.transport.write(request)
            await asyncio.wait_for(response.finished, max(1.0, until - sent + 10))
            ended = time.perf_counter()
            status = conn.parser.get_status_code() if conn.parser else 0
            if status != 200 or not response.done or response.first is None:
                out["errors"] += 1
                continue
            out["ttft"].append(response.first - sent)
            out["total"].append(ended - sent)
        except (OSError, ConnectionError, TimeoutError, httptools.HttpParserError):
            out["errors"] += 1
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            conn = None
            await asyncio.sleep(0.01)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(
    url_host: str, port: int, path: str, key: str, model: str, concurrency: int, seconds: float
) -> dict:
    body = orjson.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": "Hi there"}]}
    )
    request = (
        f"POST {path} HTTP/1.1\r\nhost: {url_host}:{port}\r\nauthorization: Bearer {key}\r\n"
        f"content-type: application/json\r\naccept: text/event-stream\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    out: dict = {"ttft": [], "total": [], "errors": 0}
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(
        *(_worker(url_host, port, request, until, out) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    ttft, total = out["ttft"], out["total"]
    return {
        "concurrency": concurrency,
        "streams": len(total),
        "errors": out["errors"],
        "seconds": round(elapsed, 3),
        "streams_per_s": round(len(total) / elapsed, 2),
        "ttft_p50_ms": _pct(ttft, 0.5),
        "ttft_p99_ms": _pct(ttft, 0.99),
        "ttft_mean_ms": statistics.fmean(ttft) * 1000 if ttft else None,
        "total_p50_ms": _pct(total, 0.5),
        "total_p99_ms": _pct(total, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--key", default="sk-bench-client")
    parser.add_argument("--model", default="bench")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    args = parser.parse_args()
    result = uvloop.run(
        run(args.host, args.port, args.path, args.key, args.model, args.concurrency, args.duration)
    )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
