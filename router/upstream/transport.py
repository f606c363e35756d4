"""Sending upstream requests: one pooled aiohttp session per provider endpoint.

Providers build `httpx.Request` objects; this module sends them. aiohttp does the sending
because it costs far less CPU per request than httpx's own transport under concurrency
(see bench/README.md). Foreign exceptions are translated here, once, into the error tree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx

from router import errors
from router.upstream.provider import PlainRequest, UpstreamResponse

Sendable = httpx.Request | PlainRequest


def _parts(request: Sendable) -> tuple[str, object, object]:
    """URL, headers and body as aiohttp takes them: bytes, or an async iterable of them for
    a body made as it is sent (a multipart upload: `router.upstream.multipart`)."""
    if isinstance(request, PlainRequest):
        return request.url, request.headers, request.content or None
    stream = request.stream
    body = (request.content or None) if isinstance(stream, httpx.ByteStream) else stream
    return str(request.url), request.headers.multi_items(), body


@dataclass(slots=True)
class UpstreamStream:
    """An upstream response whose headers have arrived and whose body is still coming."""

    status: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]
    _close: object = None

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks])

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
) -> errors.UpstreamConnectionError:
    reason = type(exc).__name__
    what = "lost the connection to" if mid_body else "could not reach"
    return errors.UpstreamConnectionError(
        f"{what} upstream '{provider}' ({reason})", provider=provider
    )


_TIMEOUTS: dict[tuple[float | None, float], aiohttp.ClientTimeout] = {}


def _timeout(total: float | None, connect: float) -> aiohttp.ClientTimeout:
    """The (immutable) aiohttp timeout for these figures, built once: most requests of a
    provider share them."""
    timeout = _TIMEOUTS.get((total, connect))
    if timeout is None:
        if len(_TIMEOUTS) > 256:  # deadline-clipped totals vary: keep the table small
            _TIMEOUTS.clear()
        timeout = _TIMEOUTS[total, connect] = aiohttp.ClientTimeout(total=total, connect=connect)
    return timeout


class _BodyChunks:
    """An aiohttp response's body, chunk by chunk as it arrives, that gives the connection
    back to the pool once read to its end (anything else closes it: see `UpstreamStream`).

    A class rather than an async generator over aiohttp's `iter_any()`: each chunk of every
    stream passes through here, and this way it passes one frame, not three."""

    __slots__ = ("_provider", "_read", "_response")

    def __init__(self, response: aiohttp.ClientResponse, provider: str) -> None:
        self._response = response
        self._read = response.content.readany
        self._provider = provider

    def __aiter__(self) -> _BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._read()
        except (aiohttp.ClientError, OSError) as exc:
            self._response.close()
            raise _connection_error(self._provider, exc, mid_body=True) from exc
        if chunk:
            return chunk
        self._response.release()
        raise StopAsyncIteration


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


class AiohttpTransport:
    """Pooled keep-alive connections to one upstream endpoint."""

    def __init__(self, provider: str, max_connections: int) -> None:
        self.provider = provider
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=max_connections, ttl_dns_cache=300, enable_cleanup_closed=False
            ),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def send(
        self, request: Sendable, timeout: float, connect: float, first_byte: float
    ) -> UpstreamResponse:
        url, headers, data = _parts(request)
        # aiohttp bounds the whole exchange (`timeout`); `HeadTimer`, only its head, and only
        # when that is shorter: a silent upstream is given up on after `first_byte`.
        head = HeadTimer(first_byte) if first_byte < timeout else None
        try:
            try:
                response = await self.session.request(
                    request.method,
                    url,
                    headers=headers,  # type: ignore[arg-type]
                    data=data,
                    timeout=_timeout(timeout, connect),
                    allow_redirects=False,
                )
            finally:
                if head is not None:
                    head.handle.cancel()
            began = answer_began.get()
            if began is not None:
                began.set()
            async with response:
                body = await response.read()
                return UpstreamResponse(response.status, response.headers, body)
        except asyncio.CancelledError:
            if head is not None and head.timed_out():
                raise errors.UpstreamTimeout(
                    f"upstream '{self.provider}' sent no answer within {first_byte:g}s",
                    provider=self.provider,
                ) from None
            raise
        except TimeoutError as exc:
            raise errors.UpstreamTimeout(
                f"upstream '{self.provider}' did not answer within {timeout:g}s",
                provider=self.provider,
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _connection_error(self.provider, exc) from exc

    async def open(self, request: Sendable, connect: float) -> UpstreamStream:
        url, headers, data = _parts(request)
        try:
            response = await self.session.request(
                request.method,
                url,
                headers=headers,  # type: ignore[arg-type]
                data=data,
                timeout=_timeout(None, connect),
                allow_redirects=False,
            )
        except TimeoutError as exc:
            raise errors.UpstreamTimeout(
                f"could not connect to upstream '{self.provider}' within {connect:g}s",
                provider=self.provider,
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _connection_error(self.provider, exc) from exc

        chunks = _BodyChunks(response, self.provider)
        return UpstreamStream(response.status, response.headers, chunks, response.close)

    async def aclose(self) -> None:
        await self.session.close()


async def with_timeout(awaitable: object, seconds: float, on_timeout: errors.RouterError) -> object:
    """Await with a deadline, raising `on_timeout` instead of TimeoutError."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable  # type: ignore[misc]
    except TimeoutError:
        raise on_timeout from None
