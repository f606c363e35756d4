"""How large a request's header block is, measured on the raw bytes of each read.

The edge's httptools parser tells where requests begin and where their headers end, but is
not handed the headers themselves: a Python call per header would cost more than the rest of
the edge together. The block is measured on the bytes instead, with C-speed `find` and
`count`: its size up to the empty line that ends it, and its line count (one per header).

A read normally begins at a request's first byte, or inside a header block begun in an
earlier read. Requests pipelined behind another one in the same read begin at an offset
the parser does not tell: `pipelined` parses such a read again with a `HeaderCounter`,
which is handed every header, when the read began at a request's first byte, and otherwise
bounds their headers by the whole read.
"""

from __future__ import annotations

import contextlib

import httptools

from router.http.edge.limits import EdgeLimits

END = b"\r\n\r\n"  # the empty line after the last header


class HeaderBlock:
    """The header block being received: what is known of it so far."""

    __slots__ = ("lines", "size", "tail")

    def __init__(self) -> None:
        self.size = 0  # bytes, from the request line's first byte
        self.lines = 0  # line ends: the request line's and one per complete header
        self.tail = b""  # the last bytes of the previous read, where `END` may begin

    def measure(self, data: bytes, fresh: bool, ended: bool, limits: EdgeLimits) -> str | None:
        """Add the part of the block in `data` (the block begins in it when `fresh`, and
        ends in it when `ended`); the limit it passes, if any."""
        if fresh:  # (a client may send CR LF after a body: not part of the next request)
            start = 0
            while data[start : start + 1] in (b"\r", b"\n"):
                start += 1
            self.size = self.lines = 0
            buf = data
        else:
            start = len(self.tail)
            buf = self.tail + data
        end = buf.find(END, start if fresh else 0) if ended else -1
        stop = len(buf) if end == -1 else max(end, start)  # (-1 although ended: count it all)
        if end != -1 and end < start:  # the empty line began in the previous read's bytes
            self.size -= start - end
            self.lines -= buf.count(b"\n", end, start)
        self.size += stop - start
        if self.size > limits.max_header_bytes:
            return "header_too_large"
        if fresh and ended and (stop - start) // 4 < limits.max_headers:
            return None  # a line is 4 bytes at least ("a:" CR LF): too short to have too many
        self.lines += buf.count(b"\n", start, stop)
        self.tail = b"" if ended else buf[-3:]
        # A block's line ends: the request line's, then one per header but the last.
        headers = self.lines if ended else self.lines - 1
        return "too_many_headers" if headers > limits.max_headers else None


class HeaderCounter:
    """httptools callbacks counting each request's headers, for `pipelined`."""

    __slots__ = ("count", "limits", "over", "size")

    def __init__(self, limits: EdgeLimits) -> None:
        self.limits = limits
        self.count = self.size = 0
        self.over: str | None = None

    def on_message_begin(self) -> None:
        self.count = self.size = 0

    def on_url(self, url: bytes) -> None:
        self.size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.count += 1
        self.size += len(name) + len(value) + 4  # ": " and CR LF

    def on_headers_complete(self) -> None:
        self.check()

    def check(self) -> None:
        if self.over is None:
            if self.size > self.limits.max_header_bytes:
                self.over = "header_too_large"
            elif self.count > self.limits.max_headers:
                self.over = "too_many_headers"


def pipelined(
    data: bytes, from_first_byte: bool, unfinished: bool, block: HeaderBlock, limits: EdgeLimits
) -> str | None:
    """The limit passed by requests that began in `data` after another one ended, if any.
    `from_first_byte`: `data` began at a request's first byte; `unfinished`: the last
    request's headers go on in the next read (`block` is then set to what it has so far)."""
    if from_first_byte:
        counter = HeaderCounter(limits)
        parser = httptools.HttpRequestParser(counter)
        with contextlib.suppress(AttributeError):  # as uvicorn sets its own parser
            parser.set_dangerous_leniencies(lenient_data_after_close=True)
        with contextlib.suppress(httptools.HttpParserError, httptools.HttpParserUpgrade):
            parser.feed_data(data)
        counter.check()  # (the last request, if its headers are unfinished)
        if counter.over is not None:
            return counter.over
        size, lines = counter.size, counter.count + 1
    else:  # where they began is not known: bounded by the whole read
        size, lines = len(data), data.count(b"\n")
        if size > limits.max_header_bytes:
            return "header_too_large"
        if lines > limits.max_headers + 2:  # (the request line's and the empty line's)
            return "too_many_headers"
    if unfinished:
        block.size, block.lines, block.tail = size, lines, data[-3:]
    return None
