"""One keep-alive HTTP/1.1 connection to an upstream: a request goes out as bytes, its answer
is read by httptools' parser (llhttp, the parser uvicorn serves with), with the leniencies
aiohttp's client reads answers with (line ends of LF alone).

An asyncio `Protocol` rather than a client library's streams: each answer costs the parser's
callbacks and one future, where aiohttp's client spent about 45% of the router's instructions
per request on its own machinery (measured with `python -m bench.instructions`). The
connection serves one exchange at a time; `router.upstream.pool` lends it out.

The reader either waits for the whole answer (`whole=True`, a JSON answer: one wake-up when
its last byte arrives) or for its head and then for its body chunk by chunk (a stream). A
stream's reader that stops reading makes the connection stop reading from the socket once
`HIGH_WATER` bytes wait, so a slow client holds back the upstream instead of filling memory.
An answer's head is read up to `MAX_HEAD_BYTES`, and a whole answer to its end, up to its
pool's `max_answer` bytes as sent and once decompressed: beyond that the exchange fails as a
malformed answer, so an upstream's endless head or body or its decompression bomb costs a
bounded amount of memory. A stream's compressed body is decompressed `DECODE_STEP` bytes at
a time, the rest kept for the next read.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

if TYPE_CHECKING:
    from router.upstream.pool import Pool

HIGH_WATER = 256 * 1024  # bytes of an unread answer that pause reading from the socket
LOW_WATER = 64 * 1024  # ... and that resume it
# An answer read whole (and a stream's event) holds at most this by default
# (`providers.<name>.max_answer_bytes`): above real answers (a batch of 2,048 embeddings of
# 1,536 floats is 45 MB of JSON, 10 large images 40 MB of base64), and what an endless or
# decompression-bomb answer costs then (about three times this, while it is decompressed)
# stays within a sidecar's memory.
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024
DECODE_STEP = 1024 * 1024  # bytes of a stream's body decompressed at a time, at most
# Bytes read before an answer's head is complete, at most: real heads take a few KB, and one
# that never ends (header lines without end) must not fill memory until a timeout.
MAX_HEAD_BYTES = 1024 * 1024


class UpstreamClosed(ConnectionError):
    """The upstream closed the connection before its answer was complete."""


class MalformedAnswer(ConnectionError):
    """The upstream's bytes are not an HTTP/1.1 answer (or its body cannot be decoded)."""


class Decoder(Protocol):
    """A decompressor as `zlib.decompressobj` makes them: output bounded by `max_length`, the
    input it did not get to kept in `unconsumed_tail`."""

    @property
    def unconsumed_tail(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


def _decoder(encoding: str | None) -> Decoder | None:
    """A decompressor for a `content-encoding` (gzip and deflate, as asked for), or None."""
    if not encoding:
        return None
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Deflate()
    if encoding == "identity":
        return None
    raise MalformedAnswer(f"an answer in an encoding not asked for ({encoding[:20]})")


class _Deflate:
    """`deflate` as servers send it: zlib-wrapped as the RFC says, or raw, as some do."""

    def __init__(self) -> None:
        self._inner: zlib._Decompress | None = None

    @property
    def unconsumed_tail(self) -> bytes:
        return self._inner.unconsumed_tail if self._inner is not None else b""

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes:
        if self._inner is None:
            raw = bool(data) and (data[0] & 0x0F) != 8  # not a zlib header
            self._inner = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        return self._inner.decompress(data, max_length)


class Connection(asyncio.Protocol):
    """A connection and the answer it is reading (see the module's docstring)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.parser = httptools.HttpResponseParser(self)
        # As lenient as aiohttp's and httpx's clients: line ends of LF alone, and spaces after
        # a chunk's size, which small servers write; headers themselves stay strict.
        self.parser.set_dangerous_leniencies(
            lenient_optional_cr_before_lf=True, lenient_spaces_after_chunk_size=True
        )
        self._loop = asyncio.get_running_loop()
        self._busy = False  # an exchange is under way
        self._whole = False
        self._waiter: asyncio.Future[None] | None = None
        # The idle timer of `next_chunk`'s waits (`_arm`): when it fires, and the deadline of
        # the wait under way, which later chunks move on without touching the timer.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._idle_due = 0.0
        self._on_head: Callable[[], None] | None = None
        self._raw: list[tuple[str, str]] = []
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._framed = True  # the answer's length is known (content-length or chunked)
        self._informational = False
        self._head_bytes = 0  # bytes read while the answer's head is incomplete
        self._write_ready: asyncio.Future[None] | None = None
        self.status = 0
        self.headers: CIMultiDictProxy[str] = _NO_HEADERS
        self.complete = False
        self.keep_alive = False
        self.received = False  # any byte of the answer arrived
        self.error: BaseException | None = None
        self.decode: Decoder | None = None
        self._most = pool.max_answer  # bytes of an answer read whole, at most

    # -- the exchange, as its reader sees it

    def send(
        self, head: bytes, body: bytes | None, whole: bool, on_head: Callable[[], None] | None
    ) -> asyncio.Future[None]:
        """Write a request (its head and, if bytes, its body) and start reading its answer: the
        future is done once the answer's head (`whole=False`) or all of it has arrived."""
        self._busy, self._whole, self._on_head = True, whole, on_head
        self._raw = []
        self._head_bytes = 0
        self.status, self.complete, self.received, self.error = 0, False, False, None
        self.decode = None
        self._waiter = waiter = self._loop.create_future()
        transport = self.transport
        assert transport is not None
        if body:
            transport.writelines((head, body))
        else:
            transport.write(head)
        return waiter

    async def write_body(self, chunk: bytes) -> None:
        """Write one chunk of a request body made as it is sent, waiting while the socket's
        buffer is full."""
        if self.closed:
            raise self.error or UpstreamClosed("the connection closed while the request was sent")
        assert self.transport is not None
        self.transport.write(chunk)
        if self._write_ready is not None:
            await self._write_ready

    def body(self) -> bytes:
        """The whole body of an answer read `whole`, decoded (MalformedAnswer past
        `max_answer` bytes once decompressed)."""
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self.decode is None:
            return data
        most = self._most
        data = self._decoded(data, most + 1)
        if len(data) > most:
            raise self._too_large()
        return data

    def _too_large(self) -> MalformedAnswer:
        return MalformedAnswer(f"an answer larger than {self._most:,} bytes (max_answer_bytes)")

    async def next_chunk(self, within: float | None = None) -> bytes:
        """The next bytes of a streamed answer's body, decoded; b"" once it has ended.
        `within`: seconds to wait for them, then TimeoutError (a timer armed only when
        nothing is waiting to be read, and kept across chunks: `_arm`)."""
        while True:
            decode = self.decode
            if decode is not None and decode.unconsumed_tail:  # what the last step left
                data = self._decoded(decode.unconsumed_tail, DECODE_STEP)
                if data:
                    return data
                continue
            chunks = self._chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._buffered = 0
                if self._paused and self.transport is not None and not self.closed:
                    self._paused = False
                    self.transport.resume_reading()
                if decode is None:
                    return data
                data = self._decoded(data, DECODE_STEP)
                if data:
                    return data
                continue
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            self._waiter = waiter = self._loop.create_future()
            if within is not None:
                self._arm(within)
            elif self._timer is not None:  # a wait without a limit after waits with one
                self._disarm()
            await waiter

    def _arm(self, within: float) -> None:
        """Time out the wait under way `within` seconds from now. The timer stays armed
        across chunks and is only moved on when it fires before the latest wait's deadline:
        arming and cancelling one per chunk cost a slow stream 4.8 k instructions a chunk."""
        due = self._idle_due = self._loop.time() + within
        timer = self._timer
        if timer is not None:
            if self._timer_at <= due:
                return  # it fires in time, and looks again then
            timer.cancel()
        self._timer_at = due
        self._timer = self._loop.call_at(due, self._idle_check)

    def _idle_check(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nothing waits now: the next wait arms the timer again
        if self._idle_due > self._loop.time():  # bytes came since it was armed
            self._timer_at = self._idle_due
            self._timer = self._loop.call_at(self._idle_due, self._idle_check)
            return
        waiter.set_exception(TimeoutError())

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def finish(self) -> None:
        """The exchange is over: give the connection back to its pool if it can serve the
        next one, else close it."""
        self._busy = False
        self._waiter = self._on_head = None
        self._disarm()
        if self.complete and self.keep_alive and not self.closed and not self._chunks:
            self.pool.release(self)
        else:
            self.close()

    def close(self) -> None:
        self._busy = False
        self._waiter = None
        self._disarm()
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()
            self.pool.lost(self)

    def _decoded(self, data: bytes, most: int) -> bytes:
        """`data` decompressed, `most` bytes at most (the rest stays in `unconsumed_tail`)."""
        decode = self.decode
        if decode is None:
            return data
        try:
            return decode.decompress(data, most)
        except zlib.error as exc:
            raise MalformedAnswer(f"an answer's body does not decode ({exc})") from None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                error = self.error
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    # -- asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self._busy:  # nothing asked: an idle connection the upstream talks on is spoilt
            self.close()
            return
        self.received = True
        if not self.status:  # the head is still coming (the parser holds it whole)
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(
                    MalformedAnswer(f"an answer's head larger than {MAX_HEAD_BYTES:,} bytes")
                )
                self.close()
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(MalformedAnswer("a switch of protocols"))
            self.close()
        except httptools.HttpParserError as exc:
            self._fail(MalformedAnswer(f"a malformed answer ({exc})"))
            self.close()
        if self._buffered > HIGH_WATER and not self.closed:
            if self._whole:  # read to its end, which nobody reads before: only bounded
                if self._buffered > self._most:
                    self._chunks.clear()
                    self._fail(self._too_large())
                    self.close()
            elif not self._paused:  # a stream: its reader resumes once it has read on
                self._paused = True
                assert self.transport is not None
                self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.pool.lost(self)
        if self._busy and not self.complete:
            if self.status and not self._framed:  # a body that ends with the connection
                self.complete, self.keep_alive = True, False
                self._wake()
            else:
                self._fail(UpstreamClosed("the upstream closed the connection"))
        ready = self._write_ready
        if ready is not None and not ready.done():
            ready.set_result(None)

    def pause_writing(self) -> None:
        self._write_ready = self._loop.create_future()

    def resume_writing(self) -> None:
        ready, self._write_ready = self._write_ready, None
        if ready is not None and not ready.done():
            ready.set_result(None)

    # -- the parser's callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # 100 Continue and friends: the answer is still to come
            self._informational = True
            self._raw = []
            return
        self.status = status
        headers = self.headers = CIMultiDictProxy(CIMultiDict(self._raw))
        self._framed = "content-length" in headers or "transfer-encoding" in headers
        try:
            self.decode = _decoder(headers.get("content-encoding"))
        except MalformedAnswer as exc:
            self._fail(exc)
            return
        if self._on_head is not None:
            self._on_head()
        if not self._whole:
            self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if not self._whole:
            self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()


_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
