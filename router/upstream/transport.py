"""Sending upstream requests: keep-alive HTTP/1.1 connections pooled per provider.

The core sends `PlainRequest`s, and the `httpx.Request`s of plugins that build their own;
this module writes them and reads their answers with httptools
(`router.upstream.connection`, `router.upstream.pool`). It replaced aiohttp's client, which
cost more than the rest of the router per request (`python -m bench.instructions`: 0.996 M
instructions per request with it, 0.53 M with the upstream's answer made in-process).
Foreign exceptions are translated here, once, into the error tree.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Container, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import httpx

from router import errors
from router.upstream.connection import (
    DEFAULT_MAX_ANSWER_BYTES,
    Connection,
    MalformedAnswer,
    UpstreamClosed,
)
from router.upstream.pool import Pool
from router.upstream.provider import PlainRequest, UpstreamResponse
from router.upstream.sse import oversized

Sendable = httpx.Request | PlainRequest
HeaderItems = dict[str, str] | list[tuple[str, str]]
Body = bytes | AsyncIterable[bytes] | None
_FRAMING = ("content-length", "transfer-encoding")


def _parts(request: Sendable) -> tuple[str, str, HeaderItems, Body, int | None]:
    """Method, URL, headers (lower-case names, without the body's framing) and body, with
    the body's length where it is known: bytes, or an async iterable of them for a body made
    as it is sent (a multipart upload: `router.upstream.multipart`)."""
    if isinstance(request, PlainRequest):
        content = request.content
        if isinstance(content, bytes):
            return request.method, request.url, request.headers, content or None, len(content)
        return request.method, request.url, request.headers, content, len(content)
    items = [(k, v) for k, v in request.headers.multi_items() if k not in _FRAMING]
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        content = request.content
        return request.method, str(request.url), items, content or None, len(content)
    given = request.headers.get("content-length")
    length = int(given) if given and given.isdigit() else None
    return request.method, str(request.url), items, stream, length  # type: ignore[return-value]


@dataclass(slots=True)
class UpstreamStream:
    """An upstream response whose headers have arrived and whose body is still coming."""

    status: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]
    _close: object = None
    # The next chunk within so many seconds (TimeoutError), b"" at the end: where the
    # transport can time a read itself, cheaper than `asyncio.timeout` around `chunks`.
    read_within: Callable[[float], Awaitable[bytes]] | None = None

    async def read(
        self, most: int = DEFAULT_MAX_ANSWER_BYTES, provider: str | None = None
    ) -> bytes:
        """The rest of the body, whole (an error's, or a JSON answer to a stream request);
        MalformedResponse, the body closed, once it passes `most` bytes
        (`providers.<name>.max_answer_bytes`)."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks:
            size += len(chunk)
            if size > most:
                self.close()
                raise oversized("an answer", most, provider)
            parts.append(chunk)
        return b"".join(parts)

    async def peek(self) -> bytes:
        """The body's first bytes (b"" for none), which the reads that follow still return:
        to tell what a body is before deciding how to read it."""
        first = await anext(self.chunks, None)
        if first is None:
            return b""
        pending, rest, read = [first], self.chunks, self.read_within

        async def chunks() -> AsyncIterator[bytes]:
            if pending:
                yield pending.pop()
            async for chunk in rest:
                yield chunk

        self.chunks = chunks()
        if read is not None:

            async def read_within(seconds: float) -> bytes:
                return pending.pop() if pending else await read(seconds)

            self.read_within = read_within
        return first

    async def next_within(self, seconds: float) -> bytes | None:
        """The next chunk, waiting at most `seconds` for it (TimeoutError); None at the end."""
        if self.read_within is not None:
            return await self.read_within(seconds) or None
        async with asyncio.timeout(seconds):
            return await anext(self.chunks, None)

    def close(self) -> None:
        close = self._close
        if callable(close):
            close()


class Transport(Protocol):
    """What the core needs from whatever sends a provider's requests."""

    async def send(
        self, request: Sendable, timeout: float, connect: float, first_byte: float
    ) -> UpstreamResponse:
        """The whole response within `timeout` seconds, its status and headers within
        `first_byte` (both raise `UpstreamTimeout`)."""
        ...

    async def open(self, request: Sendable, connect: float) -> UpstreamStream:
        """The response as soon as its headers arrive; the caller times the body."""
        ...

    async def aclose(self) -> None: ...


def _connection_error(
    provider: str, exc: BaseException, *, mid_body: bool = False
) -> errors.UpstreamError:
    """The error of a failed exchange: a lost connection, or bytes that are no HTTP answer
    (or a body that does not decode), which is a malformed answer, not a lost connection."""
    if isinstance(exc, MalformedAnswer):
        return errors.MalformedResponse(f"upstream '{provider}' sent {exc}", provider=provider)
    reason = type(exc).__name__
    what = "lost the connection to" if mid_body else "could not reach"
    return errors.UpstreamConnectionError(
        f"{what} upstream '{provider}' ({reason})", provider=provider
    )


class _BodyChunks:
    """A streamed answer's body, chunk by chunk as it arrives; at its end the connection goes
    back to its pool (anything else closes it: see `UpstreamStream.close`).

    A class rather than an async generator: each chunk of every stream passes through here,
    and this way it passes one frame, not three."""

    __slots__ = ("_conn", "_done", "_provider")

    def __init__(self, conn: Connection, provider: str) -> None:
        self._conn = conn
        self._provider = provider
        self._done = False

    def __aiter__(self) -> _BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.within(None)
        if chunk:
            return chunk
        raise StopAsyncIteration

    async def within(self, seconds: float | None) -> bytes:
        """The next chunk, waiting at most `seconds` for it; b"" at the body's end."""
        if self._done:
            return b""
        conn = self._conn
        try:
            chunk = await conn.next_chunk(seconds)
        except ConnectionError as exc:
            self.close()
            raise _connection_error(self._provider, exc, mid_body=True) from exc
        if not chunk:
            self._done = True
            conn.finish()
        return chunk

    def close(self) -> None:
        """Give up on the rest of the body: the connection cannot serve another exchange."""
        if not self._done:
            self._done = True
            self._conn.close()


#: Set, for the attempt it runs, by a hedge race (`router.routing.hedge`): an answer that has
#: begun (its status and headers arrived) sets it before its body is read, so that a JSON
#: answer is raced on its first byte, as a stream is on its first token.
answer_began: ContextVar[asyncio.Event | None] = ContextVar("answer_began", default=None)


class HeadTimer:
    """Cancels the running task if an answer's head takes longer than `seconds`: what
    `asyncio.timeout` does, without its rescheduling and state machine, for the one timer
    every attempt arms and almost always disarms (`disarm` via `handle.cancel()`, then
    `timed_out()` on a CancelledError tells whether it was this timer's)."""

    __slots__ = ("_cancelling", "_task", "expired", "handle")

    def __init__(self, seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        self.expired = False
        self.handle = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def timed_out(self) -> bool:
        """Whether the cancellation being handled is this timer's (it is then cleared), not
        one from elsewhere (the client leaving, a shutdown)."""
        return self.expired and self._task.uncancel() <= self._cancelling


class AnswerTimer(HeadTimer):
    """`HeadTimer` for a whole JSON answer: its head within `first_byte` seconds, all of it
    within `total`; one timer, moved on once if the head came in time."""

    __slots__ = ("_end", "began", "head_late")

    def __init__(self, first_byte: float, total: float) -> None:
        self._end = asyncio.get_running_loop().time() + total
        self.began = answer_began.get()
        self.head_late = False
        super().__init__(min(first_byte, total))
        if first_byte >= total:
            self.began = self.began or _NO_EVENT

    def head_arrived(self) -> None:
        """Called by the connection when the answer's head arrived."""
        began = self.began
        if began is not _NO_EVENT:
            self.began = _NO_EVENT
            if began is not None:
                began.set()

    def _expire(self) -> None:
        if self.began is _NO_EVENT:  # the head came: the whole answer's deadline now
            loop = asyncio.get_running_loop()
            if loop.time() < self._end:
                self.began = None
                self.handle = loop.call_at(self._end, self._expire)
                return
        else:
            self.head_late = True
        super()._expire()


_NO_EVENT = asyncio.Event()  # (a marker: the head has arrived, or is not timed on its own)


class HttpTransport:
    """Keep-alive HTTP/1.1 connections to a provider's upstream, pooled per origin
    (`router.upstream.pool`), each reading its answers with httptools
    (`router.upstream.connection`)."""

    def __init__(
        self, provider: str, max_connections: int, max_answer: int = DEFAULT_MAX_ANSWER_BYTES
    ) -> None:
        self.provider = provider
        self.limit = max_connections
        self.max_answer = max_answer
        self._pools: dict[tuple[str, str, int], Pool] = {}
        self._targets: dict[str, tuple[Pool, str]] = {}
        self._tls: ssl.SSLContext | None = None

    def _target(self, url: str) -> tuple[Pool, str]:
        """The pool of `url`'s origin and the start of its request's head, worked out once
        per URL (a provider sends to a handful)."""
        found = self._targets.get(url)
        if found is not None:
            return found
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise errors.UpstreamConnectionError(
                f"upstream '{self.provider}' has an URL this router cannot send to",
                provider=self.provider,
            )
        tls = scheme == "https"
        port = parts.port or (443 if tls else 80)
        key = (scheme, parts.hostname, port)
        pool = self._pools.get(key)
        if pool is None:
            if tls and self._tls is None:
                self._tls = ssl.create_default_context()
            pool = self._pools[key] = Pool(
                parts.hostname, port, self._tls if tls else None, self.limit, self.max_answer
            )
        host = parts.netloc.rpartition("@")[2]  # (never the userinfo)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if len(self._targets) > 1024:
            self._targets.clear()
        found = self._targets[url] = (pool, f" {path} HTTP/1.1\r\nhost: {host}\r\n")
        return found

    async def _exchange(
        self,
        request: Sendable,
        connect: float,
        whole: bool,
        on_head: Callable[[], None] | None,
    ) -> Connection:
        """A connection whose answer (its head, or all of it: `whole`) has arrived. A request
        written on a reused connection that the upstream had closed while it was idle is sent
        once more, on a new one: nothing of it was answered."""
        method, url, headers, body, length = _parts(request)
        pool, start = self._target(url)
        head = _head(method, start, headers, body, length)
        if head is None:
            raise errors.UpstreamConnectionError(
                f"could not send to upstream '{self.provider}' (a header holds a line break)",
                provider=self.provider,
            )
        data = body if isinstance(body, bytes) else None
        for _ in range(2):
            try:
                conn, reused = await pool.acquire(connect)
            except TimeoutError:
                raise errors.UpstreamTimeout(
                    f"could not connect to upstream '{self.provider}' within {connect:g}s",
                    provider=self.provider,
                ) from None
            except OSError as exc:
                raise _connection_error(self.provider, exc) from exc
            try:
                answered = conn.send(head, data, whole, on_head)
                if data is None and body is not None:
                    await _write_body(conn, body, chunked=length is None)  # type: ignore[arg-type]
                await answered
                return conn
            except UpstreamClosed as exc:
                conn.close()
                if not reused or conn.received:
                    raise _connection_error(self.provider, exc, mid_body=conn.status > 0) from exc
            except ConnectionError as exc:
                conn.close()
                raise _connection_error(self.provider, exc, mid_body=conn.status > 0) from exc
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    async def send(
        self, request: Sendable, timeout: float, connect: float, first_byte: float
    ) -> UpstreamResponse:
        timer = AnswerTimer(first_byte, timeout)
        try:
            try:
                conn = await self._exchange(request, connect, True, timer.head_arrived)
            finally:
                timer.handle.cancel()
        except asyncio.CancelledError:
            if timer.timed_out():
                late = f"sent no answer within {first_byte:g}s"
                what = late if timer.head_late else f"did not answer within {timeout:g}s"
                raise errors.UpstreamTimeout(
                    f"upstream '{self.provider}' {what}", provider=self.provider
                ) from None
            raise
        try:
            content = conn.body()
        except ConnectionError as exc:
            conn.close()
            raise _connection_error(self.provider, exc, mid_body=True) from exc
        conn.finish()
        return UpstreamResponse(conn.status, conn.headers, content)

    async def open(self, request: Sendable, connect: float) -> UpstreamStream:
        conn = await self._exchange(request, connect, False, None)  # (a stream begins at its
        # first token: the relay tells the hedge, not the transport)
        chunks = _BodyChunks(conn, self.provider)
        return UpstreamStream(conn.status, conn.headers, chunks, chunks.close, chunks.within)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.close()


async def _write_body(conn: Connection, body: AsyncIterable[bytes], chunked: bool) -> None:
    """A body made as it is sent, chunk by chunk (framed as chunks where its length is not
    known)."""
    async for chunk in body:
        if chunk:
            await conn.write_body(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
    if chunked:
        await conn.write_body(b"0\r\n\r\n")


def _head(
    method: str, start: str, headers: HeaderItems, body: Body, length: int | None
) -> bytes | None:
    """A request's head as bytes, with the headers the client adds (`host`, `accept`,
    `accept-encoding`, the body's framing) unless the request has its own; None if a header
    would break the head's lines."""
    if isinstance(headers, dict):
        if "content-length" in headers or "transfer-encoding" in headers:  # (media requests)
            headers = {k: v for k, v in headers.items() if k not in _FRAMING}
        names: Container[str] = headers
        lines = [f"{name}: {value}\r\n" for name, value in headers.items()]
    else:
        names = {name for name, _ in headers}
        lines = [f"{name}: {value}\r\n" for name, value in headers]
    if "accept" not in names:
        lines.append("accept: */*\r\n")
    if "accept-encoding" not in names:
        lines.append("accept-encoding: gzip, deflate\r\n")
    if body is None:
        if method in ("POST", "PUT", "PATCH"):
            lines.append("content-length: 0\r\n")
    elif length is None:
        lines.append("transfer-encoding: chunked\r\n")
    else:
        lines.append(f"content-length: {length}\r\n")
    text = "".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        return None
    if "host" in names:  # the request's own `host`, in place of the URL's
        start = start[: start.rindex("\r\nhost: ") + 2]
    head = f"{method}{start}{text}\r\n"
    try:
        return head.encode("latin-1")
    except UnicodeEncodeError:
        return head.encode("utf-8")


async def with_timeout(awaitable: object, seconds: float, on_timeout: errors.RouterError) -> object:
    """Await with a deadline, raising `on_timeout` instead of TimeoutError."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable  # type: ignore[misc]
    except TimeoutError:
        raise on_timeout from None
