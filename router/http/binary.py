"""An answer of bytes passed on as they arrive (speech audio, a transcript as text or
subtitles), with the upstream's content type.

Like `router.http.responses.EventStream`, it tells the request's `RequestRecord` how it
ended (answered, cut short after so many bytes, or left by its client), is interrupted by the
request's `DisconnectWatch` when the client leaves or the drain's time is up, and closes its
source and runs `on_close` however it ends. Bytes have no in-band way to say that they stop
short: an answer cut by an upstream failure, the drain or a bug ends without its last chunk
(the server then closes the connection), so the client sees a truncated body, never one
that looks complete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from router import errors
from router.http.disconnect import DisconnectWatch
from router.observability import logs
from router.observability.access import RequestRecord

log = logs.get_logger("router")


class BinaryAnswer(Response):
    """A 200 whose body is `chunks`, sent as they come (`headers` include its type)."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        headers: list[tuple[bytes, bytes]],
        watch: DisconnectWatch,
        record: RequestRecord,
        on_close: Callable[[], None],
    ) -> None:
        self.chunks = chunks
        self.status_code = 200
        self.background = None
        self.watch = watch
        self.record = record
        self.on_close = on_close
        self.raw_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = self.watch
        first: float | None = None
        sent = 0
        failure: errors.RouterError | None = None
        try:
            try:
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                async for chunk in self.chunks:
                    if first is None:
                        first = time.perf_counter()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    sent += len(chunk)
            except asyncio.CancelledError as exc:
                failure = watch.absorb(exc)
                if failure is None:
                    raise
            except errors.RouterError as exc:  # the upstream failed mid-answer
                failure = exc
            except Exception as exc:
                log.error("unhandled_error", request_id=self.record.request_id, exc_info=exc)
                failure = errors.InternalError("internal error in the router; the answer is cut")
            watch.stop()
            if failure is None:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            # else: no last chunk; the server closes the connection, the body is truncated
        finally:
            watch.stop()
            self.record.streamed(sent, first, failure, watch.gone)
            try:
                await _close(self.chunks)
                self.on_close()
            finally:
                self.record.finish()


async def _close(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception as exc:  # its own cleanup failed: the answer is over either way
            log.warning("stream_close_failed", error=repr(exc))
