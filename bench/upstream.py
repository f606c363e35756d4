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
Run: `python -m bench.upstream --port 9001`.
"""

from __future__ import annotations

import argparse
import asyncio

import httptools
import orjson
import uvloop

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1732000000,
        "model": "up-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the bench upstream!"},
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


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class UpstreamProtocol(asyncio.Protocol):
    def __init__(
        self, frames: list[bytes], usage_frames: list[bytes], first_token: float, gap: float
    ) -> None:
        self.frames = frames
        self.usage_frames = usage_frames
        self.tail_usage = _chunked(USAGE_FRAME + DONE) + b"0\r\n\r\n"
        self.tail = _chunked(DONE) + b"0\r\n\r\n"
        self.first_token = first_token
        self.gap = gap
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
        elif b'"stream":true' in body.replace(b" ", b""):
            self.queue = asyncio.Queue()
            self.worker = asyncio.get_running_loop().create_task(self._stream(body))
        else:
            self.transport.write(JSON_HEAD + COMPLETION)

    async def _stream(self, body: bytes) -> None:
        assert self.transport is not None and self.queue is not None
        write = self.transport.write
        write(SSE_HEAD)
        clock = asyncio.get_running_loop().time
        due = clock() + self.first_token
        usage = b'"include_usage":true' in body.replace(b" ", b"")
        for frame in self.usage_frames if usage else self.frames:
            await asyncio.sleep(max(0.0, due - clock()))
            write(frame)
            due += self.gap
        write(self.tail_usage if usage else self.tail)
        queue, self.queue, self.worker = self.queue, None, None
        while not queue.empty():  # pipelined requests that came in meanwhile
            item = queue.get_nowait()
            if self.queue is not None:
                self.queue.put_nowait(item)
            else:
                self._answer(*item)


async def serve(host: str, port: int, chunks: int, first_token: float, gap: float) -> None:
    frames = [_chunked(f) for f in stream_frames(chunks)]
    usage_frames = [_chunked(f) for f in stream_frames(chunks, usage=True)]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(frames, usage_frames, first_token, gap),
        host,
        port,
        backlog=1024,
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
