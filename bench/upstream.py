"""A fast fake OpenAI upstream: raw asyncio protocol, httptools parser, uvloop.

It must never be the bottleneck, so it skips every framework: canned bytes for the JSON answer,
pre-built SSE frames for streams: headers at once, the first of `--chunks` frames
`--first-token` seconds later (the model's time to think), then one every `--gap` seconds on a
steady clock, as a model decoding at a fixed rate (frame i is due `first_token + i * gap` after
the headers, so the event loop's millisecond timer rounding does not add up over a stream).
When the request asks for usage, each chunk carries `"usage":null` and a usage frame ends the
stream, as OpenAI does.

The gap is short on purpose: at 2 ms (40 ms a stream) the pacing alone capped c=16 at about
395 streams/s, the figure for direct calls, nginx and the Python proxies alike, so streams/s
measured the fake, not the proxies; at 0.5 ms the proxies' own cost decides it.

The scenarios need other shapes, chosen per request by the upstream model name, so that one
upstream serves them all and a router config picks them with a target's `model`:
`stream-<chunks>-<gap ms>` streams that many chunks that far apart (`stream-3600-1000`: one
chunk a second for an hour, the slow upstream that holds streams open; `stream-10000-1`: a
10,000-chunk answer). Any other model gets the default shape. Bodies of any size are read
(the prompt is never looked at beyond the `model` and `stream` fields). Slow streams (a gap of
100 ms or more) are spread out: after the first chunk, each stream keeps its own phase within
the gap, as independent clients' streams would, so that streams opened together do not all
send their chunks in the same millisecond.
Run: `python -m bench.upstream --port 9001`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from dataclasses import dataclass

import httptools
import orjson
import uvloop

# The answer OpenAI's API gives, every field its schema requires included (a provider that
# leaves some out costs the router a completion and a re-encode: router.upstream.normalize).
COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1732000000,
        "model": "up-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello from the bench upstream!",
                    "refusal": None,  # as OpenAI's own answers carry it
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }
)


def _chunk(delta: dict, finish: str | None, usage: bool) -> bytes:
    data = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1732000000,
        "model": "up-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:  # as OpenAI does once usage is asked for: null on every chunk but the last
        data["usage"] = None
    return b"data: " + orjson.dumps(data) + b"\n\n"


def stream_frames(count: int, usage: bool = False) -> list[bytes]:
    """`count` content frames; the last one carries the finish reason."""
    frames = [_chunk({"role": "assistant", "content": "tok0 "}, None, usage)]
    frames += [_chunk({"content": f"tok{i} "}, None, usage) for i in range(1, count - 1)]
    frames.append(_chunk({"content": "end"}, "stop", usage))
    return frames


USAGE_FRAME = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1732000000,'
    b'"model":"up-model","choices":[],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}\n\n'
)
DONE = b"data: [DONE]\n\n"
JSON_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    % len(COMPLETION)
)
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
CHUNKS, FIRST_TOKEN, GAP = 20, 0.002, 0.0005  # stream shape: frames, seconds, seconds
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


STREAM_FIELD = re.compile(rb'"stream"\s*:\s*true')
USAGE_FIELD = re.compile(rb'"include_usage"\s*:\s*true')
SHAPE_MODEL = re.compile(rb'"model"\s*:\s*"stream-(\d+)-(\d+(?:\.\d+)?)"')


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass(frozen=True)
class Shape:
    """One stream shape: its frames (HTTP-chunked already) and their timing."""

    frames: list[bytes]
    usage_frames: list[bytes]
    first_token: float
    gap: float


class Shapes:
    """Stream shapes by request: the default, or the one the model name asks for, built once
    per (chunks, gap) and shared by every connection."""

    def __init__(self, chunks: int, first_token: float, gap: float) -> None:
        self.first_token = first_token
        self.default = self._build(chunks, gap)
        self._named: dict[bytes, Shape] = {}

    def _build(self, chunks: int, gap: float) -> Shape:
        frames = [_chunked(f) for f in stream_frames(chunks)]
        usage_frames = [_chunked(f) for f in stream_frames(chunks, usage=True)]
        return Shape(frames, usage_frames, self.first_token, gap)

    def for_body(self, body: bytes) -> Shape:
        match = SHAPE_MODEL.search(body)
        if match is None:
            return self.default
        shape = self._named.get(match[0])
        if shape is None:
            chunks = max(2, int(match[1]))
            shape = self._named[match[0]] = self._build(chunks, float(match[2]) / 1000)
        return shape


SLOW_GAP = 0.1  # seconds: streams this slow get their own phase
GOLDEN = 0.6180339887  # successive multiples mod 1 spread evenly over [0, 1)
TAIL_USAGE = _chunked(USAGE_FRAME + DONE) + b"0\r\n\r\n"
TAIL = _chunked(DONE) + b"0\r\n\r\n"


class UpstreamProtocol(asyncio.Protocol):
    streams = 0  # streams started, for the phase of slow ones

    def __init__(self, shapes: Shapes) -> None:
        self.shapes = shapes
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.queue: asyncio.Queue[tuple[bytes, bytes]] | None = None
        self.worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.worker is not None:
            self.worker.cancel()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        if self.queue is not None:  # a stream is in progress: answer in order after it
            self.queue.put_nowait((url, body))
            return
        self._answer(url, body)

    def _answer(self, url: bytes, body: bytes) -> None:
        assert self.transport is not None
        if not url.endswith(b"/chat/completions"):
            self.transport.write(NOT_FOUND)
        elif STREAM_FIELD.search(body):
            self.queue = asyncio.Queue()
            self.worker = asyncio.get_running_loop().create_task(self._stream(body))
        else:
            self.transport.write(JSON_HEAD + COMPLETION)

    async def _stream(self, body: bytes) -> None:
        assert self.transport is not None and self.queue is not None
        write = self.transport.write
        write(SSE_HEAD)
        shape = self.shapes.for_body(body)
        clock = asyncio.get_running_loop().time
        due = clock() + shape.first_token
        usage = USAGE_FIELD.search(body) is not None
        UpstreamProtocol.streams += 1
        phase = (UpstreamProtocol.streams * GOLDEN % 1) * shape.gap
        for frame in shape.usage_frames if usage else shape.frames:
            await asyncio.sleep(max(0.0, due - clock()))
            write(frame)
            if frame is shape.frames[0] or frame is shape.usage_frames[0]:
                due += phase if shape.gap >= SLOW_GAP else 0.0
            due += shape.gap
        write(TAIL_USAGE if usage else TAIL)
        queue, self.queue, self.worker = self.queue, None, None
        while not queue.empty():  # pipelined requests that came in meanwhile
            item = queue.get_nowait()
            if self.queue is not None:
                self.queue.put_nowait(item)
            else:
                self._answer(*item)


async def serve(host: str, port: int, chunks: int, first_token: float, gap: float) -> None:
    shapes = Shapes(chunks, first_token, gap)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(shapes),
        host,
        port,
        backlog=4096,
        reuse_address=True,
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--chunks", type=int, default=CHUNKS)
    parser.add_argument("--first-token", type=float, default=FIRST_TOKEN)
    parser.add_argument("--gap", type=float, default=GAP)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.chunks, args.first_token, args.gap))


if __name__ == "__main__":
    main()
