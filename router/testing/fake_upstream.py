"""A scriptable fake upstream: a real HTTP server on loopback, for tests of the router and of
provider plugins.

Tests queue *replies* per path (status, headers, exact body bytes, SSE frames with pacing,
dropped connections, silence) and read back the requests the fake received, with their
arrival times, so they can assert attempts and their spacing.

    upstream = FakeUpstream().start()
    upstream.add("/v1/chat/completions", json_reply({...}))
    upstream.add("/v1/chat/completions", sse_reply([...], delay=0.01))
    ...
    upstream.requests  # [Received(method, path, headers, body, at), ...]
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Reply:
    """One scripted answer.

    `frames` makes it a stream: each item is written as-is (bytes) or as `data: <json>\\n\\n`
    (dict) or `data: <str>\\n\\n` (str), `delay` seconds apart, and the second
    `second_frame_delay` seconds after the first (a model slow to its first token, after a
    first comment or role chunk). `first_delay` holds the headers. `drop_before_headers` closes the
    connection without answering; `hang` keeps it open and silent; `drop_after_frames` closes
    the connection after that many frames. `release`: the frames after the first wait until
    this event is set (by a test that has seen the first chunk), so what follows them is
    mid-stream whatever the machine's speed.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    frames: list[bytes | str | dict[str, Any]] | None = None
    delay: float = 0.0
    first_delay: float = 0.0
    second_frame_delay: float = 0.0
    drop_before_headers: bool = False
    hang: bool = False
    drop_after_frames: int | None = None
    release: threading.Event | None = None


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Reply(status, {"content-type": "application/json", **(headers or {})}, body)


def text_reply(text: str, status: int, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status, {"content-type": "text/plain; charset=utf-8", **(headers or {})}, text.encode()
    )


def sse_reply(
    frames: Iterable[bytes | str | dict[str, Any]],
    *,
    delay: float = 0.0,
    first_delay: float = 0.0,
    second_frame_delay: float = 0.0,
    headers: dict[str, str] | None = None,
    drop_after_frames: int | None = None,
    release: threading.Event | None = None,
) -> Reply:
    return Reply(
        200,
        {"content-type": "text/event-stream", **(headers or {})},
        frames=list(frames),
        delay=delay,
        first_delay=first_delay,
        second_frame_delay=second_frame_delay,
        drop_after_frames=drop_after_frames,
        release=release,
    )


def chat_completion(
    content: str = "Hello!", model: str = "up-model", usage: tuple[int, int] = (5, 2)
) -> dict[str, Any]:
    """An OpenAI `chat.completion` object."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1732000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage_block(usage),
    }


def usage_block(usage: tuple[int, int]) -> dict[str, int]:
    """An OpenAI `usage` object for (prompt, completion) tokens, in the order upstreams send."""
    prompt, completion = usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def chat_chunk(
    delta: dict[str, Any],
    finish: str | None = None,
    *,
    model: str = "up-model",
    chunk_id: str = "chatcmpl-fake",
    created: int = 1732000000,
) -> dict[str, Any]:
    """One OpenAI `chat.completion.chunk` with a single choice, fields in OpenAI's order."""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [choice],
    }


def chat_chunks(
    pieces: Iterable[str] = ("Hel", "lo", "!"),
    model: str = "up-model",
    usage: tuple[int, int] | None = (5, 3),
    done: bool = True,
    chunk_id: str = "chatcmpl-fake",
) -> list[bytes | str | dict[str, Any]]:
    """OpenAI `chat.completion.chunk` frames: role, content pieces, finish, usage, [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return chat_chunk(delta, finish, model=model, chunk_id=chunk_id)

    frames: list[bytes | str | dict[str, Any]] = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"content": piece}) for piece in pieces]
    frames.append(chunk({}, "stop"))
    if usage is not None:
        frames.append({**chunk({}), "choices": [], "usage": usage_block(usage)})
    if done:
        frames.append("[DONE]")
    return frames


Handler = Callable[[Received], Reply]
# Gets the request before its body is read (`body` empty) and the body's chunks as they
# arrive: for uploads a test must not hold whole (see `FakeUpstream.set_streaming`).
StreamingHandler = Callable[[Received, AsyncIterator[bytes]], Awaitable[Reply]]


class FakeUpstream:
    """An HTTP server on 127.0.0.1 in its own thread, answering from per-path scripts.

    A path's queue is consumed reply by reply; when it is empty the path's default reply
    (see `set_default`) answers, and without one the fake answers 404.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._queues: dict[str, deque[Reply | Handler]] = defaultdict(deque)
        self._defaults: dict[str, Reply | Handler] = {}
        self._streaming: dict[str, StreamingHandler] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._hanging: list[asyncio.Future[None]] = []
        # Paths whose client went away mid-answer (or while the answer was being delayed).
        self.disconnects: list[str] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, path: str, *replies: Reply | Handler) -> FakeUpstream:
        self._queues[path].extend(replies)
        return self

    def set_default(self, path: str, reply: Reply | Handler) -> FakeUpstream:
        self._defaults[path] = reply
        return self

    def set_streaming(self, path: str, handler: StreamingHandler) -> FakeUpstream:
        """Requests to `path` are answered by `handler`, which reads their body as it
        arrives (queued replies and defaults do not apply to them)."""
        self._streaming[path] = handler
        return self

    def reset(self) -> None:
        self.requests.clear()
        self._queues.clear()
        self._defaults.clear()
        self._streaming.clear()

    def received(self, path: str | None = None) -> list[Received]:
        return [r for r in self.requests if path is None or r.path == path]

    # -- serving ----------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr,attr-defined]

    def stop(self) -> None:
        async def _stop() -> None:
            for future in self._hanging:
                future.cancel()
            if self._runner is not None:
                await self._runner.cleanup()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_reply(self, received: Received) -> Reply:
        queue = self._queues.get(received.path)
        item: Reply | Handler | None = (
            queue.popleft() if queue else self._defaults.get(received.path)
        )
        if item is None:
            return json_reply({"detail": "Not Found"}, status=404)
        return item(received) if callable(item) else item

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        streaming = self._streaming.get(request.path)
        body = b"" if streaming is not None else await request.read()
        received = Received(
            request.method,
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.monotonic(),
        )
        self.requests.append(received)
        if streaming is not None:
            reply = await streaming(received, request.content.iter_chunked(64 * 1024))
        else:
            reply = self._next_reply(received)
        try:
            if reply.first_delay:
                await asyncio.sleep(reply.first_delay)
            if reply.drop_before_headers:
                assert request.transport is not None
                request.transport.abort()
                return web.Response()  # never sent: the connection is gone
            return await self._answer(request, reply)
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects.append(received.path)
            raise

    async def _answer(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.hang:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._hanging.append(future)
            await future
        if reply.frames is None:
            return web.Response(status=reply.status, headers=reply.headers, body=reply.body)
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        await response.prepare(request)
        for i, frame in enumerate(reply.frames):
            if reply.drop_after_frames is not None and i >= reply.drop_after_frames:
                assert request.transport is not None
                request.transport.abort()
                return response
            if i == 1 and reply.release is not None:
                await asyncio.to_thread(reply.release.wait, 30)
            if i == 1 and reply.second_frame_delay:
                await asyncio.sleep(reply.second_frame_delay)
            if i and reply.delay:
                await asyncio.sleep(reply.delay)
            await response.write(_encode_frame(frame))
        await response.write_eof()
        return response


def _encode_frame(frame: bytes | str | dict[str, Any]) -> bytes:
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, str):
        return f"data: {frame}\n\n".encode()
    return b"data: " + orjson.dumps(frame) + b"\n\n"
