"""The HTTP edge of `llm-switchyard serve`: clients that send their headers too slowly or too
large, or open too many connections, are dropped at their limits, answered where an answer
is possible, counted and logged, and other clients do not notice. Slow clients are raw
sockets (`router.testing.raw`); the normal client is the openai SDK. Body limits are in
test_body_limits.py."""

from __future__ import annotations

import contextlib
import functools
import json
import resource
import shutil
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httptools
import httpx
import openai
import pytest

from router.http.deadlines import TICK
from router.http.edge import LINGER, EdgeLimits
from router.http.edge.headers import HeaderBlock, pipelined
from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_completion,
    closed_after_test,
    json_reply,
)
from router.testing.raw import (
    SlowCrowd,
    assert_refused,
    chat_body,
    chat_head,
    connect,
    dropped_total,
    read_answer,
    read_kept_alive_answer,
)

HEADER_TIMEOUT = 2.0
CONFIG = f"""
server:
  watch_config: false
  header_timeout_seconds: {HEADER_TIMEOUT}
  max_header_bytes: 8192
  max_headers: 40
  max_connections: {{max_connections}}
providers:
  up: {{{{plugin: openai, base_url: "{{upstream}}/v1", api_key: sk-upstream}}}}
  m: {{{{plugin: mock, settings: {{{{chunk_delay: 0.3, words: 8}}}}}}}}
models:
  chat: {{{{targets: [{{{{provider: up, model: up-model}}}}]}}}}
  slow-stream: {{{{targets: [{{{{provider: m, model: m-1}}}}]}}}}
keys:
  app: {{{{key: sk-edge-client}}}}
"""
KEY = "sk-edge-client"
# Slow clients are answered within one check of the deadlines after their limit; on a
# loaded machine the answer may take a while longer still to be read.
LATE = TICK + 1.0


def start_router(
    tmp_path: Path, upstream: str, max_connections: int = 600, args=(), access_log: bool = True
) -> RouterProcess:
    """`llm-switchyard serve` with short limits. (Its stderr is read when it stops: a test that
    sends many requests turns the access log off, lest a full pipe block the router.)"""
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(max_connections=max_connections, upstream=upstream))
    env = {} if access_log else {"LLM_ROUTER_ACCESS_LOG": "false"}
    return RouterProcess(path, env=env, args=list(args)).start()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.set_default("/v1/chat/completions", json_reply(chat_completion("hi")))
        yield fake


@pytest.fixture(scope="module")
def router(tmp_path_factory, upstream) -> Iterator[RouterProcess]:
    process = start_router(tmp_path_factory.mktemp("edge"), upstream.url, access_log=False)
    try:
        yield process
    finally:
        process.stop()


request_head = functools.partial(chat_head, KEY)


# -- headers ---------------------------------------------------------------------------------


def test_headers_sent_a_byte_at_a_time_get_408_at_the_header_timeout(router):
    before = dropped_total(router, "header_timeout")
    sock = connect(router.port)
    opened = time.monotonic()
    head = request_head(2)
    answered: list[float] = []

    def trickle() -> None:
        for i in range(len(head)):
            try:
                sock.send(head[i : i + 1])
            except OSError:
                return
            time.sleep(0.05)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    sock.settimeout(HEADER_TIMEOUT + 10)
    status, headers, body = read_answer(sock)
    answered.append(time.monotonic() - opened)
    message = assert_refused(status, headers, body, 408, "request_timeout")
    assert f"within {HEADER_TIMEOUT:g} s" in message
    assert HEADER_TIMEOUT <= answered[0] < HEADER_TIMEOUT + LATE
    assert dropped_total(router, "header_timeout") == before + 1


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(router):
    sock = connect(router.port)
    opened = time.monotonic()
    status, headers, body = read_answer(sock)
    assert_refused(status, headers, body, 408, "request_timeout")
    assert HEADER_TIMEOUT <= time.monotonic() - opened < HEADER_TIMEOUT + LATE


def test_a_1_mb_header_line_gets_431_and_the_connection_closes(router):
    before = dropped_total(router, "header_too_large")
    sock = connect(router.port)
    with contextlib.suppress(OSError):  # (answered after 8 KiB; the rest is read, discarded)
        sock.sendall(request_head(2, b"x-big: " + b"a" * (1 << 20) + b"\r\n") + b"{}")
    status, headers, body = read_answer(sock)
    message = assert_refused(status, headers, body, 431, "request_header_fields_too_large")
    assert "larger than 8192 bytes" in message
    assert dropped_total(router, "header_too_large") == before + 1


def test_10000_headers_get_431(router):
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(10_000))
    sock = connect(router.port)
    with contextlib.suppress(OSError):
        sock.sendall(request_head(2, many) + b"{}")
    status, headers, body = read_answer(sock)
    message = assert_refused(status, headers, body, 431, "request_header_fields_too_large")
    assert "more than 40 headers" in message or "larger than 8192 bytes" in message
    # Within the size limit, the count alone is enough.
    before = dropped_total(router, "too_many_headers")
    sock = connect(router.port)
    sock.sendall(request_head(2, b"".join(b"x-h%d: v\r\n" % i for i in range(41))) + b"{}")
    message = assert_refused(*read_answer(sock), 431, "request_header_fields_too_large")
    assert "more than 40 headers" in message
    assert dropped_total(router, "too_many_headers") == before + 1


def test_headers_within_the_limits_pass_on_one_kept_alive_connection(router):
    """The header clock runs only while headers arrive: a kept-alive connection serving
    requests for longer than the header timeout, a stream that lasts longer than it, and
    requests with 15 headers more than the SDK's own are all fine."""
    client = closed_after_test(openai.OpenAI(base_url=router.base_url, api_key=KEY, max_retries=0))
    words: list[str] = []

    def read_stream() -> None:
        stream = client.chat.completions.create(
            model="slow-stream", messages=[{"role": "user", "content": "x"}], stream=True
        )
        words.extend(
            c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
        )

    reader = threading.Thread(target=read_stream)
    reader.start()
    started = time.monotonic()
    while time.monotonic() - started < HEADER_TIMEOUT + 0.5:
        reply = client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={f"x-extra-{i}": "v" for i in range(15)},
        )
        assert reply.choices[0].message.content == "hi"
        time.sleep(0.4)
    reader.join(10)
    assert len(words) == 8  # 8 words 0.3 s apart: longer than the header timeout


def test_on_a_kept_alive_connection_the_header_clock_starts_at_a_requests_first_byte(router):
    body = chat_body()
    sock = connect(router.port)
    sock.sendall(request_head(len(body)) + body)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    time.sleep(HEADER_TIMEOUT / 2)  # idle between requests: not counted
    sock.sendall(request_head(len(body))[:10])
    first_byte = time.monotonic()
    status, headers, answer = read_answer(sock)
    assert_refused(status, headers, answer, 408, "request_timeout")
    assert HEADER_TIMEOUT <= time.monotonic() - first_byte < HEADER_TIMEOUT + LATE


def test_empty_lines_between_requests_do_not_hold_a_connection(router):
    body = chat_body()
    sock = connect(router.port)
    sock.sendall(request_head(len(body)) + body)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    first_byte = time.monotonic()
    with contextlib.suppress(OSError):
        while time.monotonic() - first_byte < HEADER_TIMEOUT + 5:
            sock.send(b"\r\n")  # (each one would restart uvicorn's keep-alive timer)
            time.sleep(0.2)
            sock.settimeout(0.01)
            with contextlib.suppress(TimeoutError):
                if sock.recv(1, socket.MSG_PEEK):
                    break
    sock.settimeout(5)
    assert_refused(*read_answer(sock), 408, "request_timeout")
    assert HEADER_TIMEOUT <= time.monotonic() - first_byte < HEADER_TIMEOUT + LATE


def test_a_dropped_client_keeping_its_side_open_is_closed_after_the_linger(router):
    sock = connect(router.port)
    sock.sendall(request_head(2, b"x-big: " + b"a" * 10_000 + b"\r\n"))
    assert read_answer(sock)[0] == 431  # (the answer, then the router's half-close)
    answered = time.monotonic()
    with pytest.raises(OSError):  # once the router has closed, a write is refused
        while time.monotonic() - answered < LINGER + 5:
            sock.send(b"more")
            time.sleep(0.05)
    assert LINGER <= time.monotonic() - answered < LINGER + LATE


# -- many clients ----------------------------------------------------------------------------


def test_hundreds_of_slow_clients_do_not_slow_a_normal_client(router):
    client = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key=KEY, max_retries=0, timeout=5)
    )

    def ask() -> float:
        started = time.perf_counter()
        reply = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}]
        )
        assert reply.choices[0].message.content == "hi"
        return time.perf_counter() - started

    quiet = [ask() for _ in range(10)]
    before = dropped_total(router, "header_timeout")
    crowd = SlowCrowd(router.port, 300, request_head(2))
    thread = threading.Thread(target=crowd.run, daemon=True)
    thread.start()
    assert crowd.ready.wait(20)
    # While all of them hold their connections (none is older than the header timeout yet):
    busy = []
    while time.monotonic() - min(c.opened for c in crowd.clients) < HEADER_TIMEOUT - 0.3:
        busy.append(ask())
    thread.join(HEADER_TIMEOUT + 30)
    assert not thread.is_alive()

    assert len(busy) >= 5
    assert max(busy) < 1.0, (quiet, busy)  # no request waits on the slow ones
    assert statistics.median(busy) < max(0.25, 5 * statistics.median(quiet)), (quiet, busy)
    assert [c.error for c in crowd.clients if c.error] == []
    assert {c.status for c in crowd.clients} == {408}
    held = [c.answered - c.opened for c in crowd.clients if c.answered is not None]
    assert len(held) == 300
    assert min(held) >= HEADER_TIMEOUT
    assert max(held) < HEADER_TIMEOUT + LATE, sorted(held)[-5:]
    assert dropped_total(router, "header_timeout") == before + 300


def test_a_connection_beyond_max_connections_gets_503_and_the_rest_are_served(tmp_path, upstream):
    router = start_router(tmp_path, upstream.url, max_connections=3)
    try:
        held = [connect(router.port) for _ in range(3)]
        for sock in held:  # answered, so accepted by the router, and kept alive
            sock.sendall(request_head(len(chat_body())) + chat_body())
            assert read_kept_alive_answer(sock)[0] == 200
        extra = connect(router.port)
        extra.sendall(request_head(2) + b"{}")
        status, headers, body = read_answer(extra)
        assert status == 503, body
        assert headers["connection"] == "close"
        assert headers["retry-after"] == "1"
        error = json.loads(body)["error"]
        assert error["code"] == "too_many_connections"
        assert "3 connections" in error["message"]
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 5
        while True:  # a closed connection frees its place
            response = httpx.post(
                router.url + "/v1/chat/completions",
                content=chat_body(),
                headers={"authorization": f"Bearer {KEY}"},
            )
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert response.status_code == 200
        assert dropped_total(router, "too_many_connections") == 1
    finally:
        _, err = router.stop()
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    drops = [line for line in lines if line["event"] == "connection_dropped"]
    assert drops == [
        {
            "reason": "too_many_connections",
            "limit": 3,
            "client": "127.0.0.1",
            "unlogged": 0,
            "event": "connection_dropped",
            "level": "warning",
            "timestamp": drops[0]["timestamp"],
        }
    ]


def test_drops_are_logged_once_per_period_not_once_per_client(tmp_path, upstream):
    router = start_router(tmp_path, upstream.url)
    try:
        for _ in range(20):
            sock = connect(router.port)
            sock.sendall(request_head(2, b"x-big: " + b"a" * 10_000 + b"\r\n"))
            assert read_answer(sock)[0] == 431
        assert dropped_total(router, "header_too_large") == 20
    finally:
        _, err = router.stop()
    drops = [line for line in err.decode().splitlines() if "connection_dropped" in line]
    assert len(drops) == 1, drops
    assert "sk-" not in err.decode().replace("sk-upstream", "")  # no key in any line


def test_the_limits_hold_in_every_worker(tmp_path, upstream):
    router = start_router(tmp_path, upstream.url, args=["--workers", "2"])
    try:  # (connections go to either worker: several of each kind)
        slow = [connect(router.port) for _ in range(4)]
        opened = time.monotonic()
        for sock in slow:
            sock.sendall(request_head(2)[:20])
        for _ in range(4):
            sock = connect(router.port)
            sock.sendall(request_head(2, b"x-big: " + b"a" * 10_000 + b"\r\n"))
            assert read_answer(sock)[0] == 431
        for sock in slow:
            assert_refused(*read_answer(sock), 408, "request_timeout")
        assert time.monotonic() - opened < HEADER_TIMEOUT + LATE  # the config's, not 10 s
    finally:
        router.stop()


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files limit")


@pytest.mark.skipif(
    shutil.which("prlimit") is None or resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1456,
    reason="needs util-linux's prlimit and a hard open-files limit of 1456 or more",
)
def test_the_open_files_limit_is_raised_for_max_connections(tmp_path, upstream):
    """600 connections need about 1456 files (a client and an upstream socket each, and some
    more); a process started with a soft limit of 256 raises it, as far as the hard one goes."""
    for hard, expected, warned in (("", 2 * 600 + 256, False), ("1000", 1000, True)):
        path = tmp_path / "router.yaml"
        path.write_text(CONFIG.format(max_connections=600, upstream=upstream.url))
        router = RouterProcess(path)
        router.command = ["prlimit", f"--nofile=256:{hard}", *router.command]
        router.start()
        try:
            assert router.process is not None
            assert open_files_limit(router.process.pid) == expected
        finally:
            _, err = router.stop()
        assert ('"open_files_limit_low"' in err.decode()) is warned


# -- header blocks, measured on the raw bytes ------------------------------------------------

LIMITS = EdgeLimits(max_header_bytes=300, max_headers=5)


def block(headers: int, value: bytes = b"v") -> bytes:
    lines = b"".join(b"x-%d: %s\r\n" % (i, value) for i in range(headers))
    return b"POST /v1/chat/completions HTTP/1.1\r\n" + lines + b"\r\n"


def measured(reads: list[bytes]) -> str | None:
    """What an edge parser and `HeaderBlock` make of a request arriving in `reads`."""
    seen = {"ended": False, "begun": False}

    class Events:
        def on_message_begin(self) -> None:
            seen["begun"] = True

        def on_headers_complete(self) -> None:
            seen["ended"] = True

    parser = httptools.HttpRequestParser(Events())
    state = HeaderBlock()
    for i, data in enumerate(reads):
        before = seen["ended"]
        parser.feed_data(data)
        if seen["begun"] and not before:
            reason = state.measure(data, i == 0, seen["ended"], LIMITS)
            if reason is not None:
                return reason
    return None


@pytest.mark.parametrize(
    ("raw", "verdict"),
    [
        (block(5), None),
        (block(6), "too_many_headers"),
        (block(2, b"v" * 100), None),
        (block(2, b"v" * 150), "header_too_large"),
        (b"\r\n\r\n" + block(6), "too_many_headers"),  # (CR LF before a request is skipped)
    ],
)
def test_a_header_block_is_measured_alike_in_one_read_or_a_byte_a_read(raw, verdict):
    assert measured([raw]) == verdict
    assert measured([raw[i : i + 1] for i in range(len(raw))]) == verdict
    assert measured([raw[:-2], raw[-2:]]) == verdict  # (the empty line split between reads)


def test_requests_pipelined_in_one_read_are_counted_each():
    two = block(5) + block(5)
    assert pipelined(two, True, False, HeaderBlock(), LIMITS) is None  # 10 headers, 2 requests
    assert pipelined(block(5) + block(6), True, False, HeaderBlock(), LIMITS) == "too_many_headers"
    # Where a read does not begin at a request's first byte, the whole read bounds them.
    assert pipelined(b"}" + block(5), False, False, HeaderBlock(), LIMITS) is None
    assert pipelined(b"}" + block(6), False, False, HeaderBlock(), LIMITS) == "too_many_headers"


def test_pipelined_requests_are_served_and_an_oversized_one_among_them_is_431(router):
    body = chat_body()
    one = request_head(len(body), b"".join(b"x-h%d: v\r\n" % i for i in range(30))) + body
    sock = connect(router.port)
    sock.sendall(one * 5)  # 5 requests of 34 headers in one write: 170 header lines in all
    sock.settimeout(10)
    received = b""
    while received.count(b"HTTP/1.1 200") < 5:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    sock.close()
    many = request_head(2, b"".join(b"x-h%d: v\r\n" % i for i in range(100))) + b"{}"
    sock = connect(router.port)
    sock.sendall(one + many)  # the second one has 104 headers
    assert_refused(*read_answer(sock), 431, "request_header_fields_too_large")
