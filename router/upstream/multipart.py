"""`multipart/form-data` both ways: parsed as it arrives, and produced as it is sent.

`MultipartParser` is pure: bytes in, events out, whatever the chunking (a delimiter may be
split across chunks). `MultipartBody` is a form as a multipart body whose files are read
from their `Upload`s while the upstream reads the body, never joined in memory; it knows its
length in advance, so the upstream gets a `Content-Length`, not a chunked body.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from router.upstream.spool import Upload

CHUNK = 64 * 1024  # bytes of a file sent at a time


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


@dataclass(frozen=True, slots=True)
class Part:
    """A part begins: its form name, and for a file its file name and content type."""

    name: str
    filename: str | None
    content_type: str | None


# An event: a part begins (`Part`), some of its bytes, or it ends (None).
Event = Part | bytes | None

_BOUNDARY = re.compile(r"""boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;,"]{1,70}))""", re.IGNORECASE)
_PARAM = re.compile(r""";\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)""")
_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _DATA, _DONE = range(5)


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a `multipart/form-data` content type, or None for any other type."""
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        return None
    found = _BOUNDARY.search(content_type)
    if found is None:
        return None
    return (found.group(1) or found.group(2)).encode("latin-1")


class MultipartParser:
    """multipart/form-data (RFC 7578), parsed chunk by chunk: `feed` returns the events the
    chunk completes; `finish` checks the body ended with its closing delimiter."""

    def __init__(self, boundary: bytes, max_header_bytes: int = 16 * 1024) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray(b"\r\n")  # (the first delimiter has no line break before it)
        self._state = _PREAMBLE
        self._max_header_bytes = max_header_bytes

    def feed(self, data: bytes) -> list[Event]:
        buffer = self._buffer
        buffer += data
        delimiter = self._delimiter
        keep = len(delimiter) - 1  # bytes that may be the start of a delimiter split in two
        events: list[Event] = []
        while True:
            state = self._state
            if state == _DATA:
                at = buffer.find(delimiter)
                if at < 0:
                    cut = len(buffer) - keep
                    if cut > 0:
                        events.append(bytes(buffer[:cut]))
                        del buffer[:cut]
                    return events
                if at:
                    events.append(bytes(buffer[:at]))
                events.append(None)
                del buffer[: at + len(delimiter)]
                self._state = _AFTER_DELIMITER
            elif state == _AFTER_DELIMITER:
                if len(buffer) < 2:
                    return events
                if buffer.startswith(b"--"):
                    self._state = _DONE
                    continue
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 256:
                        raise MultipartError(
                            "malformed multipart body: no line break after a boundary"
                        )
                    return events
                if buffer[:end].strip(b" \t"):  # only transport padding may follow a boundary
                    raise MultipartError("malformed multipart body: garbage after a boundary")
                del buffer[: end + 2]
                self._state = _HEADERS
            elif state == _HEADERS:
                if buffer.startswith(b"\r\n"):  # a part without headers
                    raw, skip = b"", 2
                else:
                    end = buffer.find(b"\r\n\r\n")
                    if max(end, len(buffer) if end < 0 else 0) > self._max_header_bytes:
                        raise MultipartError("a multipart part's headers are too long")
                    if end < 0:
                        return events
                    raw, skip = bytes(buffer[:end]), end + 4
                del buffer[:skip]
                events.append(_part(raw))
                self._state = _DATA
            elif state == _PREAMBLE:
                at = buffer.find(delimiter)
                if at < 0:
                    del buffer[: max(0, len(buffer) - keep)]
                    return events
                del buffer[: at + len(delimiter)]
                self._state = _AFTER_DELIMITER
            else:  # the epilogue, after the closing delimiter: ignored
                buffer.clear()
                return events

    def finish(self) -> None:
        """Raise MultipartError unless the body ended with its closing delimiter."""
        if self._state != _DONE:
            raise MultipartError("the multipart body ended before its closing boundary")


def _part(raw: bytes) -> Part:
    name = filename = content_type = None
    for line in raw.split(b"\r\n") if raw else ():
        key, colon, value = line.partition(b":")
        if not colon:
            raise MultipartError("malformed multipart part header")
        text = value.strip().decode("utf-8", "replace")  # (browsers send names as raw UTF-8)
        field = key.strip().lower()
        if field == b"content-disposition":
            name, filename = _disposition(text)
        elif field == b"content-type":
            content_type = text
    if name is None:
        raise MultipartError("a multipart part has no Content-Disposition with a name")
    return Part(name, filename, content_type)


def _disposition(value: str) -> tuple[str | None, str | None]:
    """(name, filename) of a `form-data; name="..."; filename="..."` header."""
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) > 1:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key.lower()] = raw
    filename = params.get("filename")
    extended = params.get("filename*")  # RFC 5987: charset'language'percent-encoded
    if extended is not None and extended.count("'") >= 2:
        charset, _, encoded = extended.split("'", 2)
        with contextlib.suppress(LookupError, UnicodeDecodeError):  # keep the plain one
            filename = urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="strict")
    return params.get("name"), filename


def _quote(value: str) -> str:
    """A name for a part header, escaped as browsers do."""
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def _text(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int | float):
        return str(value).encode()
    return orjson.dumps(value)


class MultipartBody:
    """A form (text fields, lists of them, `Upload`s) as a multipart/form-data body, made as
    it is read. Each iteration starts over, so one body may be sent again."""

    __slots__ = ("_parts", "boundary", "content_type", "length")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.boundary = os.urandom(16).hex()
        start = f"--{self.boundary}\r\n"
        parts: list[bytes | Upload] = []
        for name, value in fields.items():
            for item in value if isinstance(value, list) else (value,):
                if item is None:
                    continue
                disposition = f'{start}Content-Disposition: form-data; name="{_quote(name)}"'
                if isinstance(item, Upload):
                    kind = item.content_type or "application/octet-stream"
                    head = f'{disposition}; filename="{_quote(item.filename)}"\r\n'
                    parts += [f"{head}Content-Type: {kind}\r\n\r\n".encode(), item, b"\r\n"]
                else:
                    parts.append(f"{disposition}\r\n\r\n".encode() + _text(item) + b"\r\n")
        parts.append(f"--{self.boundary}--\r\n".encode())
        self._parts = parts
        self.length = sum(p.size if isinstance(p, Upload) else len(p) for p in parts)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"<MultipartBody {self.length} bytes>"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            if isinstance(part, Upload):
                for offset in range(0, part.size, CHUNK):
                    yield part.read_at(offset, CHUNK)
            else:
                yield part
