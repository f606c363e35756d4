"""Short requests one at a time, each request's own latency: the streams scenario's probe.

One keep-alive connection posts the same chat request as wrk's script (`post.lua`) again and
again for `--seconds`, timing each from the write of its request to the last byte of its
answer. It prints one JSON object: the count, errors, p50 / p99 / max in ms, and the
(start, end) on the monotonic clock of every request slower than `--slow` ms, so that the
harness can tell which of them overlapped a pause of the whole machine (`bench.pauses`).

Why not only wrk: wrk corrects its latencies for coordinated omission. After the run it
adds, for every request slower than twice the mean interval, one made-up sample per mean
interval the request outlasted, as if requests had kept arriving at the mean rate while it
waited. One 30 ms stall in a run of 0.7 ms requests thus becomes some 40 samples, and a few
such stalls a run make wrk's p99. That is the right figure for a client sending at a fixed
rate; for requests sent one at a time it is not what any of them waited. The scenario shows
both. Raw asyncio + uvloop, like the other clients here, so that it costs little.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time

import orjson
import uvloop

HI = [{"role": "user", "content": "Hi there"}]


def request(port: int, key: str, model: str) -> bytes:
    body = orjson.dumps({"model": model, "messages": HI})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("an answer without content-length")


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile of an ascending list: the smallest value with a fraction
    `q` of them at or below it."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def run(port: int, key: str, model: str, seconds: float, slow_ms: float) -> dict:
    raw = request(port, key, model)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    slow: list[tuple[float, float]] = []
    errors = 0
    first_error = None
    clock = time.monotonic
    end = clock() + seconds
    try:
        while clock() < end:
            start = clock()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(content_length(head))
            done = clock()
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
                first_error = first_error or (head + body)[:300].decode("latin-1")
                continue
            ms = (done - start) * 1000
            latencies.append(ms)
            if ms > slow_ms:
                slow.append((round(start, 6), round(done, 6)))
    finally:
        writer.close()
    latencies.sort()
    figures: dict = {
        "requests": len(latencies),
        "errors": errors,
        "first_error": first_error,
        "slow": slow,
        "p50_ms": None,  # (no request answered 200)
        "p99_ms": None,
        "max_ms": None,
    }
    if latencies:
        figures |= {
            "p50_ms": round(percentile(latencies, 0.50), 3),
            "p99_ms": round(percentile(latencies, 0.99), 3),
            "max_ms": round(latencies[-1], 3),
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--slow", type=float, default=5.0, help="ms: report requests slower")
    args = parser.parse_args(argv)
    figures = uvloop.run(run(args.port, args.key, args.model, args.seconds, args.slow))
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
