"""A request body, read and parsed within the server's limits.

- Size: a declared Content-Length over `max_body_bytes` is refused before a byte of the body
  is read; a chunked body is cut as soon as it passes the limit.
- Time: the body must arrive within `body_timeout_seconds` of the end of the headers, with no
  pause longer than `body_idle_timeout_seconds`; a trickling or stalled client gets 408.
- Depth: arrays and objects nested deeper than `max_json_depth` get 400 (orjson parses 1024
  levels but serialises only 254: a deeper body would fail later, on its way upstream).

A refusal before the whole body has arrived closes the connection (`connection: close`):
otherwise the server would go on reading, and discarding, whatever the client still sends.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from router import errors
from router.config.models import ServerConfig
from router.http import dropped
from router.http.deadlines import Deadlines

_CLOSE = {"connection": "close"}


@dataclass(frozen=True, slots=True)
class BodyLimits:
    max_bytes: int
    idle: float  # seconds
    total: float  # seconds
    max_depth: int

    @classmethod
    def of(cls, server: ServerConfig) -> BodyLimits:
        return cls(
            server.max_body_bytes,
            server.body_idle_timeout_seconds,
            server.body_timeout_seconds,
            server.max_json_depth,
        )


class BodyClock:
    """The deadlines of the requests reading their body: an overdue one's task is cancelled,
    and the cancellation turned into a 408 by `read_body`. One per app (and event loop)."""

    __slots__ = ("_expired", "deadlines")

    def __init__(self) -> None:
        self.deadlines: Deadlines[asyncio.Task[Any]] = Deadlines(self._expire)
        self._expired: set[asyncio.Task[Any]] = set()

    def _expire(self, task: asyncio.Task[Any]) -> None:
        self._expired.add(task)
        task.cancel()

    def timed_out(self, task: asyncio.Task[Any]) -> bool:
        """Whether the cancellation `task` is handling is this clock's (it is then cleared)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0


async def read_body(
    receive: Receive, headers: Mapping[str, str], limits: BodyLimits, clock: BodyClock
) -> bytes:
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise errors.InvalidRequest("invalid Content-Length header", headers=_CLOSE)
        if int(declared) > limits.max_bytes:
            raise _too_large(limits)
    task = asyncio.current_task()
    assert task is not None
    now = time.monotonic()
    last = now + limits.total  # the whole body's deadline
    due = now + limits.idle
    deadlines = clock.deadlines
    deadlines.watch(task, due if due < last else last)
    # A body in several messages is gathered in a BytesIO, which grows its buffer in place
    # and hands that buffer over as the bytes (no copy): a list of the pieces and a join
    # held the body twice at the end, and copied it once more.
    chunks: io.BytesIO | None = None
    size = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                more = message.get("more_body", False)
                if not more and chunks is None:
                    if len(body) > limits.max_bytes:  # (a chunked body in one message)
                        raise _too_large(limits)
                    return body  # the usual case: the whole body in one message
                size += len(body)
                if size > limits.max_bytes:
                    raise _too_large(limits)
                if chunks is None:
                    chunks = io.BytesIO()
                chunks.write(body)
                del body, message  # (the piece is in the buffer now)
                if not more:
                    return chunks.getvalue()
                due = time.monotonic() + limits.idle
                deadlines.watch(task, due if due < last else last)
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()
    except asyncio.CancelledError:
        if not clock.timed_out(task):
            raise
        if due < last:
            dropped.count("body_idle_timeout")
            message_text = f"no byte of the request body arrived for {limits.idle:g} s"
        else:
            dropped.count("body_timeout")
            message_text = f"the request body did not arrive within {limits.total:g} s"
        raise errors.RequestTimeout(message_text, headers=_CLOSE) from None
    finally:
        deadlines.forget(task)


def _too_large(limits: BodyLimits) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(
        f"request body is larger than {limits.max_bytes} bytes", headers=_CLOSE
    )


def parse_json(raw: bytes, max_depth: int) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidRequest(
            f"the request body is not valid JSON: {exc}", param="body"
        ) from None
    # A body nests no deeper than it has opening brackets (each level takes 2 bytes at least):
    # most bodies are not walked.
    if (
        len(raw) > 2 * max_depth
        and raw.count(b"{") + raw.count(b"[") > max_depth
        and nested_deeper_than(value, max_depth)
    ):
        raise errors.InvalidRequest(
            f"the request body is nested deeper than {max_depth} levels", param="body"
        )
    return value


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels in `value` (a top-level array
    or object is level 1). Walks containers level by level, looking only at their items."""
    level = [value] if type(value) is dict or type(value) is list else []
    for _ in range(limit):
        below: list[Any] = []
        for container in level:
            items = container.values() if type(container) is dict else container
            below += [v for v in items if type(v) is dict or type(v) is list]
        if not below:
            return False
        level = below
    return bool(level)
