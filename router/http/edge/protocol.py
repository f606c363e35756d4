"""`EdgeProtocol`: uvicorn's httptools protocol behind the edge's limits (see `router.http.edge`).

Per request, in the usual case (the request line and headers arrive in one read), the edge
costs one parse of those bytes by llhttp in C, three Python callbacks, and a `find` and a
`count` on the bytes; no timer is armed. The header clock runs only for headers that are
still unfinished at the end of a read, and for the first request, from the opening of the
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import typing
import weakref
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from router import errors
from router.http import dropped
from router.http.deadlines import Deadlines
from router.http.edge import limits as edge_limits
from router.http.edge.headers import END, HeaderBlock, pipelined
from router.http.edge.limits import EdgeLimits

LINGER = 2.0  # seconds a dropped client has to read its answer before the socket is closed


@dataclass(slots=True)
class _Edge:
    """What the connections of one uvicorn server share."""

    limits: EdgeLimits
    deadlines: Deadlines[EdgeProtocol] = field(
        default_factory=lambda: Deadlines(EdgeProtocol.expire)
    )
    # The connections whose client takes none of its answer while more waits to be sent.
    stalls: Deadlines[EdgeProtocol] = field(default_factory=lambda: Deadlines(EdgeProtocol.stalled))
    open: int = 0  # connections admitted and not yet closed


_edges: weakref.WeakKeyDictionary[ServerState, _Edge] = weakref.WeakKeyDictionary()


def _edge_of(server_state: ServerState) -> _Edge:
    edge = _edges.get(server_state)
    if edge is None:
        edge = _edges[server_state] = _Edge(edge_limits.current())
    return edge


class EdgeProtocol(asyncio.Protocol):
    """uvicorn's httptools protocol behind the edge's limits (see `router.http.edge`)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._new_inner = functools.partial(
            HttpToolsProtocol,
            config=config,
            server_state=server_state,
            app_state=app_state,
            _loop=_loop,
        )
        self._edge = _edge_of(server_state)
        self._limits = self._edge.limits
        self._inner: HttpToolsProtocol | None = None
        self._parser: httptools.HttpRequestParser | None = None  # None: not watching
        self._transport: asyncio.Transport | None = None
        self._forwarding = False  # False once the edge has answered: bytes are discarded
        self._admitted = False
        self._in_headers = True  # between requests, or inside a header block
        self._begun = False  # inside a header block
        self._clock = False  # whether the header deadline is watched
        self._first_at_start = False  # (during a read) a request's first byte begins it
        self._later_begins = 0  # (during a read) requests begun after its first byte
        self._heads = 0  # header blocks completed
        self._block = HeaderBlock()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport = typing.cast(asyncio.Transport, transport)
        edge, limits = self._edge, self._limits
        if edge.open >= limits.max_connections:
            self._drop("too_many_connections")
            return
        edge.open += 1
        self._admitted = self._forwarding = True
        self._parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # as uvicorn sets its own parser
            self._parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._inner = self._new_inner()
        self._inner.connection_made(transport)
        self._start_clock()  # the first request's time runs from the connection's opening

    def data_received(self, data: bytes) -> None:
        if not self._forwarding:
            return  # answered already: read and discarded
        inner = self._inner
        assert inner is not None
        parser = self._parser
        if parser is None:
            inner.data_received(data)
            return
        waiting, continuing, heads = self._in_headers, self._begun, self._heads
        self._first_at_start = waiting and not continuing
        self._later_begins = 0
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # both parsers resume after the upgrade request the same way
        except httptools.HttpParserError:
            self._stop_watching()  # uvicorn answers 400 for what its parser refuses
            inner.data_received(data)
            return
        reason = None
        ended = self._heads != heads
        if waiting and (ended or self._begun):  # a header block begins or goes on in `data`
            limits = self._limits
            end = data.find(END) if ended and not continuing and data[0] > 13 else -1
            if end == -1:
                reason = self._block.measure(data, not continuing, ended, limits)
            elif end > limits.max_header_bytes:  # (the usual case: a whole block, read at once)
                reason = "header_too_large"
            elif end // 4 >= limits.max_headers and data.count(b"\n", 0, end) > limits.max_headers:
                reason = "too_many_headers"  # (a line is 4 bytes at least: "a:" CR LF)
        if self._later_begins and reason is None:
            reason = pipelined(
                data, waiting and not continuing, self._begun, self._block, self._limits
            )
        if reason is not None:
            self._drop(reason)
            return
        if not self._clock and (self._begun or (waiting and not ended and not continuing)):
            # Headers unfinished at the end of a read, or bytes between requests that begin
            # none (empty lines): their time runs.
            self._start_clock()
        inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._forwarding and self._inner is not None:
            self._inner.eof_received()  # (uvicorn's closes the transport: it returns None)
        return None  # a dropped client has read its answer and closed: close too

    def connection_lost(self, exc: Exception | None) -> None:
        self._edge.deadlines.forget(self)
        self._edge.stalls.forget(self)
        if self._admitted:
            self._admitted = False
            self._edge.open -= 1
        self._parser = None
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        # The client has stopped taking the answer as fast as it is written: it has
        # `send_timeout` seconds to take some before the connection is closed.
        self._edge.stalls.watch(self, time.monotonic() + self._limits.send_timeout)
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._edge.stalls.forget(self)
        if self._inner is not None:
            self._inner.resume_writing()

    # -- httptools callbacks (no `on_header`: see `router.http.edge.headers`) ---------------------

    def on_message_begin(self) -> None:
        self._in_headers = self._begun = True
        if self._first_at_start:
            self._first_at_start = False
        else:
            self._later_begins += 1

    def on_headers_complete(self) -> None:
        self._in_headers = self._begun = self._first_at_start = False
        self._heads += 1
        if self._clock:
            self._clock = False
            self._edge.deadlines.forget(self)

    def on_message_complete(self) -> None:
        self._in_headers = True

    # -- limits ------------------------------------------------------------------------------

    def expire(self) -> None:
        """A deadline of `Deadlines`: the headers are overdue, or the lingering is over."""
        if self._forwarding:
            self._drop("header_timeout")
        elif self._transport is not None:
            self._transport.close()

    def stalled(self) -> None:
        """A deadline of the edge's `stalls`: the client took none of its answer for
        `send_timeout` seconds. The connection is closed: the app sees its client gone."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        dropped.report("send_timeout", self._limits.send_timeout, dropped.client_address(transport))
        transport.abort()

    def _start_clock(self) -> None:
        self._clock = True
        self._edge.deadlines.watch(self, time.monotonic() + self._limits.header_timeout)

    def _stop_watching(self) -> None:
        self._parser = None
        self._clock = False
        self._edge.deadlines.forget(self)

    def _drop(self, reason: str) -> None:
        """Answer for `reason`, half-close, and discard what follows until the client closes
        or `LINGER` seconds have passed."""
        self._forwarding = False
        self._stop_watching()
        transport = self._transport
        assert transport is not None
        error, limit = _refusal(reason, self._limits)
        dropped.report(reason, limit, dropped.client_address(transport))
        if transport.is_closing():
            return
        transport.write(answer(error))
        if transport.can_write_eof():
            transport.write_eof()
        self._edge.deadlines.watch(self, time.monotonic() + LINGER)


def answer(error: errors.RouterError) -> bytes:
    """`error` as a whole HTTP/1.1 response that closes the connection."""
    body = error.to_json()
    lines = [
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in error.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _refusal(reason: str, limits: EdgeLimits) -> tuple[errors.RouterError, float]:
    """The error answering a drop for `reason`, and the limit that was passed."""
    if reason == "header_timeout":
        timeout = limits.header_timeout
        return errors.RequestTimeout(
            f"the request headers did not arrive within {timeout:g} s"
        ), timeout
    if reason == "too_many_headers":
        most = limits.max_headers
        return errors.HeadersTooLarge(f"the request has more than {most} headers"), most
    if reason == "header_too_large":
        size = limits.max_header_bytes
        return errors.HeadersTooLarge(f"the request headers are larger than {size} bytes"), size
    most = limits.max_connections
    return errors.ServiceUnavailable(
        f"the router has {most} connections open; retry shortly",
        code="too_many_connections",
        headers={"retry-after": "1"},
    ), most
