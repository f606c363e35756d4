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

DONE_FRAME = b"data: [DONE]\n\n"
BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark, which some servers begin a body with


@dataclass(slots=True)
class Event:
    data: bytes
    event: str | None = None


class SSEDecoder:
    """Feed bytes as they arrive; get whole events back as soon as they are complete."""

    __slots__ = ("_begun", "_buffer")

    def __init__(self) -> None:
        self._buffer = b""
        self._begun = False  # (whether the stream's first bytes, a BOM's place, have come)

    def feed(self, chunk: bytes) -> Iterator[Event]:
        if not self._begun:
            chunk, self._buffer = self._buffer + chunk, b""
            if len(chunk) < len(BOM) and BOM.startswith(chunk):
                self._buffer = chunk  # (a BOM's first bytes, perhaps: wait for the rest)
                return
            self._begun = True
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
        buffer = self._buffer + chunk if self._buffer else chunk
        hold = b""
        if buffer.find(b"\r") != -1:  # (cheaper than `in`, which first tries an int needle)
            if buffer.endswith(b"\r"):  # may be the first half of a CRLF split across reads
                buffer, hold = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            event = _parse_event(buffer[start:end])
            start = end + 2
            if event is not None:
                yield event
        self._buffer = buffer[start:] + hold

    def flush(self) -> Iterator[Event]:
        """What is left when the stream ends without a final blank line."""
        rest, self._buffer = self._buffer, b""
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
