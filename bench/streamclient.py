"""A small streaming load client: `concurrency` keep-alive connections, each posting a
streaming chat request again and again for `duration` seconds (`--api responses` or
`messages`: a Responses or Messages request instead, at its own path).

It timestamps the send, the first body bytes that carry non-empty text (`content`; a
Responses `delta`, a Messages `text`: time to first token) and the end of the response
(total), and counts as an error any non-200 answer, a stream without its last event
(`[DONE]`; `response.completed`, `message_stop`), or a dropped connection. Raw asyncio +
httptools + uvloop, so that the client costs little next to the proxy under test. Prints one
JSON object, with the number of SSE events received (`chunks`) and the first error's status
and body, if any.

`--hold N` is the other mode, for many open streams: it opens N streams (a few hundred
connections at a time, each batch once the one before has its first events), prints
`{"event": "open", ...}` once each has its first event (`started`), and
then answers commands on stdin, one a line: `mark` prints the events received so far and the
streams still open, `close` (or the end of stdin) closes every connection, prints the last
figures and exits. The harness reads the proxy's CPU and memory between marks.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field

import httptools
import orjson
import uvloop

EVENT = b"data:"


@dataclass(frozen=True)
class Api:
    """What a streamed answer of one API looks like to this client."""

    path: str
    text: re.Pattern[bytes]  # the first bytes that carry answer text
    done: bytes  # the stream's last event
    fields: dict[str, object] = field(default_factory=dict)  # of the request, besides `model`

    def body(self, model: str) -> bytes:
        return orjson.dumps({"model": model, "stream": True, **self.fields})


HI = [{"role": "user", "content": "Hi there"}]
APIS = {
    "chat": Api(
        "/v1/chat/completions", re.compile(rb'"content":\s*"[^"]'), b"[DONE]", {"messages": HI}
    ),
    "responses": Api(
        "/v1/responses",
        re.compile(rb'"delta":\s*"[^"]'),
        b"response.completed",
        {"input": "Hi there"},
    ),
    "messages": Api(
        "/v1/messages",
        re.compile(rb'"text":\s*"[^"]'),
        b"message_stop",
        {"max_tokens": 256, "messages": HI},
    ),
}


class _Response:
    def __init__(self, api: Api = APIS["chat"]) -> None:
        self.api = api
        self.seen = b""
        self.tail = b""
        self.first: float | None = None
        self.done = False
        self.events = 0
        self.finished = asyncio.get_running_loop().create_future()

    def on_body(self, body: bytes) -> None:
        if self.first is None:
            self.seen += body
            if self.api.text.search(self.seen):
                self.first = time.perf_counter()
                self.seen = b""
        joined = self.tail + body
        # events whose `data:` ends in this piece (one split across pieces is counted once)
        self.events += joined.count(EVENT) - self.tail.count(EVENT)
        if self.api.done in joined:
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


async def _worker(host: str, port: int, request: bytes, until: float, out: dict, api: Api) -> None:
    loop = asyncio.get_running_loop()
    conn: _Conn | None = None
    while time.perf_counter() < until:
        try:
            if conn is None or conn.lost.done():
                _, conn = await loop.create_connection(_Conn, host, port)
            response = _Response(api)
            conn.start(response)
            sent = time.perf_counter()
            assert conn.transport is not None
            conn.transport.write(request)
            await asyncio.wait_for(response.finished, max(1.0, until - sent + 10))
            ended = time.perf_counter()
            status = conn.parser.get_status_code() if conn.parser else 0
            if status != 200 or not response.done or response.first is None:
                out["errors"] += 1
                out["first_error"] = out["first_error"] or _describe(status, response)
                continue
            out["ttft"].append(response.first - sent)
            out["total"].append(ended - sent)
            out["chunks"] += response.events
        except (OSError, ConnectionError, TimeoutError, httptools.HttpParserError) as exc:
            out["errors"] += 1
            out["first_error"] = out["first_error"] or f"{type(exc).__name__}: {exc}"
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            conn = None
            await asyncio.sleep(0.01)


def _describe(status: int, response: _Response) -> str:
    """A failed stream in a few words: its status and the start of its body."""
    body = (response.seen or response.tail)[:200].decode(errors="replace")
    missing = "" if response.done else f", no {response.api.done.decode()}"
    return f"status {status}{missing}: {body}"


def build_request(
    host: str, port: int, path: str, key: str | None, model: str, headers: list[str], api: Api
) -> bytes:
    """One streaming request of `api`, bytes ready to send again and again."""
    body = api.body(model)
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}"]
    if key:
        lines.append(f"authorization: Bearer {key}")
    lines += ["content-type: application/json", "accept: text/event-stream"]
    lines += [h.replace("=", ": ", 1) if ": " not in h else h for h in headers]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(
    url_host: str, port: int, request: bytes, concurrency: int, seconds: float, api: Api
) -> dict:
    out: dict = {"ttft": [], "total": [], "errors": 0, "chunks": 0, "first_error": None}
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(
        *(_worker(url_host, port, request, until, out, api) for _ in range(concurrency))
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
        "chunks": out["chunks"],
        "first_error": out["first_error"],
    }


class _Held(asyncio.Protocol):
    """One held stream: counts its events, never keeps its bytes. A held stream that ends
    (the answer completes, or the connection drops) counts as dropped: it should not."""

    def __init__(self, tally: dict, request: bytes) -> None:
        self.tally = tally
        self.request = request
        self.response = _Response()
        self.parser = httptools.HttpResponseParser(self.response)
        self.transport: asyncio.Transport | None = None
        self.counted = 0
        self.started = asyncio.get_running_loop().create_future()  # its first event came
        self.ended = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)
        self.tally["open"] += 1

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("unparsable answer")
            return
        if self.parser.get_status_code() != 200:
            self._fail(f"status {self.parser.get_status_code()}")
            return
        response = self.response
        response.seen = b""  # only the count matters here
        self.tally["chunks"] += response.events - self.counted
        self.counted = response.events
        if response.events and not self.started.done():
            self.tally["started"] += 1
            self.started.set_result(None)
        if response.finished.done():
            self._end()

    def _fail(self, why: str) -> None:
        self.ended = True  # an error, not also a drop
        self.tally["errors"] += 1
        self.tally["first_error"] = self.tally["first_error"] or why
        if not self.started.done():
            self.started.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def _end(self) -> None:
        if not self.ended and not self.tally["closing"]:
            self.tally["dropped"] += 1
        self.ended = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally["open"] -= 1
        if not self.started.done():
            self.started.set_result(None)
        self._end()


async def hold(
    host: str, port: int, request: bytes, count: int, batch: int, timeout: float
) -> None:
    """Open `count` streams and keep them open, answering `mark` and `close` on stdin. Each
    batch of connections waits for its streams' first events before the next one opens, so
    that no listen queue on the way overflows (a dropped SYN waits a second to retry)."""
    loop = asyncio.get_running_loop()
    tally: dict = {
        "open": 0, "chunks": 0, "started": 0, "errors": 0, "dropped": 0,
        "closing": False, "first_error": None,
    }  # fmt: skip
    held: list[_Held] = []
    started = time.perf_counter()
    deadline = started + timeout
    for at in range(0, count, batch):
        size = min(batch, count - at)
        results = await asyncio.gather(
            *(loop.create_connection(lambda: _Held(tally, request), host, port)
              for _ in range(size)),
            return_exceptions=True,
        )  # fmt: skip
        fresh = []
        for result in results:
            if isinstance(result, BaseException):
                tally["errors"] += 1
                tally["first_error"] = tally["first_error"] or repr(result)
            else:
                fresh.append(result[1])
        held += fresh
        waiting = {one.started for one in fresh}
        if waiting:
            await asyncio.wait(waiting, timeout=max(0.0, deadline - time.perf_counter()))

    def figures(event: str) -> str:
        keys = ("open", "chunks", "started", "errors", "dropped", "first_error")
        out = {"event": event, "seconds": round(time.perf_counter() - started, 3)}
        return orjson.dumps({**out, **{k: tally[k] for k in keys}}).decode() + "\n"

    sys.stdout.write(figures("open"))
    sys.stdout.flush()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).strip()
        if line == b"mark":
            sys.stdout.write(figures("mark"))
            sys.stdout.flush()
            continue
        break  # `close` or the end of stdin
    tally["closing"] = True
    for one in held:
        if one.transport is not None:
            one.transport.close()
    await asyncio.sleep(0.1)
    sys.stdout.write(figures("closed"))
    sys.stdout.flush()


def raise_open_files() -> None:
    """As many descriptors as the hard limit allows: 10,000 streams need 10,000 of them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api", default="chat", choices=sorted(APIS))
    parser.add_argument("--path", help="default: the API's own (/v1/chat/completions, ...)")
    parser.add_argument("--key", default="sk-bench-client")
    parser.add_argument("--model", default="bench")
    parser.add_argument("--header", action="append", default=[], help="NAME=VALUE, repeatable")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("--hold", type=int, default=0, help="open this many streams and hold")
    parser.add_argument("--batch", type=int, default=250, help="connections opened at a time")
    parser.add_argument("--open-timeout", type=float, default=120.0)
    args = parser.parse_args()
    raise_open_files()
    key = args.key or None
    api = APIS[args.api]
    path = args.path or api.path
    request = build_request(args.host, args.port, path, key, args.model, args.header, api)
    if args.hold:
        uvloop.run(hold(args.host, args.port, request, args.hold, args.batch, args.open_timeout))
        return
    result = uvloop.run(run(args.host, args.port, request, args.concurrency, args.duration, api))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
