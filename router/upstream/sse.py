"""Server-sent events: an incremental decoder for upstream streams, and the encoder for ours.

The decoder follows the rules the OpenAI SDK applies: events end at a blank line (LF, CRLF
or CR line ends), `:` lines are comments, several `data:` lines join with a newline; and, as
the SSE standard says, a byte-order mark that begins the stream is ignored (it would hide
the first event's `data` field).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from router import errors
from router.upstream.connection import DEFAULT_MAX_ANSWER_BYTES

DONE_FRAME = b"data: [DONE]\n\n"
BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark, which some servers begin a body with


@dataclass(slots=True)
class Event:
    data: bytes
    event: str | None = None


class SSEDecoder:
    """Feed bytes as they arrive; get whole events back as soon as they are complete.

    An event not yet complete is held as the pieces it came in, joined only once a piece
    arrives that can end it (a blank line in it, or a line end just after one), so a large
    event costs its size once, not once per read; and one of more than `most` bytes is a
    malformed answer (an upstream's endless event must not fill memory)."""

    __slots__ = ("_begun", "_bom", "_cr", "_most", "_newline", "_parts", "_provider", "_size")

    def __init__(self, most: int = DEFAULT_MAX_ANSWER_BYTES, provider: str | None = None) -> None:
        self._most = most
        self._provider = provider
        self._parts: list[bytes] = []  # the event under way, line ends made LF, as it came
        self._size = 0  # ... its bytes
        self._newline = False  # ... whether it ends with a line end
        self._cr = False  # a CR ended the last read: perhaps the first half of a CRLF
        self._bom = b""  # the stream's first bytes while they may be a BOM's
        self._begun = False  # (whether the stream's first bytes, a BOM's place, have come)

    def feed(self, chunk: bytes) -> Iterator[Event]:
        if not self._begun:
            chunk, self._bom = self._bom + chunk, b""
            if len(chunk) < len(BOM) and BOM.startswith(chunk):
                self._bom = chunk  # (a BOM's first bytes, perhaps: wait for the rest)
                return
            self._begun = True
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
        if self._cr:
            chunk, self._cr = b"\r" + chunk, False
        if chunk.find(b"\r") != -1:  # (cheaper than `in`, which first tries an int needle)
            if chunk.endswith(b"\r"):  # may be the first half of a CRLF split across reads
                chunk, self._cr = chunk[:-1], True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not chunk:
            return
        parts = self._parts
        if parts:
            if chunk.find(b"\n\n") == -1 and not (self._newline and chunk[0] == 10):
                self._hold(chunk)  # it cannot end the event under way
                return
            parts.append(chunk)
            buffer = b"".join(parts)
            parts.clear()
        else:
            buffer = chunk
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            event = _parse_event(buffer[start:end])
            start = end + 2
            if event is not None:
                yield event
        self._size = 0
        if start < len(buffer):
            self._hold(buffer[start:] if start else buffer)

    def _hold(self, piece: bytes) -> None:
        """Keep `piece` of the event under way; MalformedResponse past `most` bytes."""
        self._parts.append(piece)
        self._size += len(piece)
        self._newline = piece[-1] == 10
        if self._size > self._most:
            self._parts.clear()
            raise oversized("an event", self._most, self._provider)

    def flush(self) -> Iterator[Event]:
        """What is left when the stream ends without a final blank line."""
        rest = b"".join(self._parts) + (b"\n" if self._cr else b"")
        self._parts.clear()
        self._size, self._cr = 0, False
        if rest.strip():
            event = _parse_event(rest.rstrip(b"\n"))
            if event is not None:
                yield event


def _parse_event(block: bytes) -> Event | None:
    if block.startswith(b"data: ") and block.find(b"\n") == -1:  # the common case, fast
        return Event(block[6:])
    data: list[bytes] = []
    name: str | None = None
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    if not data:
        return None
    return Event(b"\n".join(data), name)


def encode(payload: dict[str, Any]) -> bytes:
    """An SSE event of `payload`; MalformedResponse when it holds what JSON cannot carry
    (`unencodable`)."""
    try:
        return b"data: " + orjson.dumps(payload) + b"\n\n"
    except TypeError as exc:
        raise unencodable(exc) from None


def oversized(what: str, most: int, provider: str | None) -> errors.MalformedResponse:
    """An answer (or a stream's event) past `providers.<name>.max_answer_bytes`: a malformed
    upstream answer, which fails its attempt."""
    who = f"upstream '{provider}'" if provider else "the upstream"
    return errors.MalformedResponse(
        f"{who} sent {what} larger than {most:,} bytes (max_answer_bytes)", provider=provider
    )


def unencodable(exc: TypeError, provider: str | None = None) -> errors.MalformedResponse:
    """An answer or event the router cannot write as JSON: an integer past 64 bits (an
    upstream's absurd usage, or what the router added up from it) fails the attempt as a
    malformed upstream answer."""
    who = f"upstream '{provider}' answered" if provider else "the upstream sent"
    return errors.MalformedResponse(
        f"{who} what cannot be re-encoded as JSON ({exc})", provider=provider
    )


class ErrorFrame(bytes):
    """The OpenAI error event that ends a failed stream (`data: {"error": {...}}`), carrying
    its error, so that whatever sends it knows, without parsing it, how the stream ended."""

    error: Any  # the router.errors.RouterError it reports


def error_frame(error: Any) -> ErrorFrame:
    """The error event for a `router.errors.RouterError` (no `[DONE]` follows it)."""
    frame = ErrorFrame(encode(error.to_dict()))
    frame.error = error
    return frame
