"""The access log's direct JSON line is the line structlog would have written."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sys
from collections.abc import Iterator

import orjson
import pytest
import structlog
import structlog.contextvars

from router.observability import logs


@pytest.fixture
def json_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.BytesIO]:
    saved, sink = structlog.get_config(), logs._json_sink
    buf = io.BytesIO()
    monkeypatch.setattr(sys, "stderr", type("Err", (), {"buffer": buf})())
    logs.register_secrets(["sk-upstream-secret"])
    logs.configure("info", "json")
    yield buf
    structlog.contextvars.clear_contextvars()
    logs.register_secrets([])
    structlog.configure(**saved)
    logs._json_sink = sink


FIELDS = {
    "request_id": "r1",
    "status": 200,
    "key": "bench",
    "note": "echoed sk-upstream-secret",
    "attempts": [{"target": "up/m", "outcome": "ok", "ms": 1.5}],
    "rate_limit": None,
}


def _lines(buf: io.BytesIO) -> list[dict]:
    return [orjson.loads(line) for line in buf.getvalue().splitlines()]


def test_same_line_as_structlog_and_secrets_masked(json_log: io.BytesIO) -> None:
    log = logs.get_logger("router")
    log.info("request", **FIELDS)
    logs.info_line(log, "request", dict(FIELDS))
    slow, fast = _lines(json_log)
    assert list(slow) == list(fast)  # same keys, same order
    assert slow.pop("timestamp").endswith("Z") and fast.pop("timestamp").endswith("Z")
    assert slow == fast
    assert fast["note"] == "echoed ***" and b"sk-upstream-secret" not in json_log.getvalue()


def test_other_lines_are_masked_for_secrets_and_their_digests(json_log: io.BytesIO) -> None:
    digest = hashlib.sha256(b"sk-upstream-secret").hexdigest()
    logs.get_logger("router").warning("odd", said=f"hash {digest} / {digest.upper()}")
    assert _lines(json_log)[-1]["said"] == "hash *** / ***"


def test_bound_context_variables_still_appear(json_log: io.BytesIO) -> None:
    structlog.contextvars.bind_contextvars(tenant="t1")
    logs.info_line(logs.get_logger("router"), "request", dict(FIELDS))
    assert _lines(json_log)[-1]["tenant"] == "t1"


def test_a_reconfigured_structlog_is_respected(json_log: io.BytesIO) -> None:
    with structlog.testing.capture_logs() as captured:
        logs.info_line(logs.get_logger("router"), "request", dict(FIELDS))
    assert captured and captured[0]["event"] == "request"
    assert json_log.getvalue() == b""


class _Buffered(io.BytesIO):
    """A stream that shows only what was flushed, like stderr's buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed = b""

    def flush(self) -> None:
        self.flushed = self.getvalue()


def test_lines_written_in_a_loop_iteration_are_flushed_together_at_its_end(
    json_log: io.BytesIO,
) -> None:
    stream = _Buffered()
    sink = logs._json_sink
    assert sink is not None
    logs._json_sink = (sink[0], sink[1], stream)

    async def run() -> tuple[bytes, bytes]:
        log = logs.get_logger("router")
        logs.info_line(log, "request", dict(FIELDS))
        logs.info_line(log, "request", dict(FIELDS))
        before = stream.flushed
        await asyncio.sleep(0)
        return before, stream.flushed

    before, after = asyncio.run(run())
    assert before == b""
    assert after.count(b'"event":"request"') == 2
