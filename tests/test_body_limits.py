"""Request bodies through `llm-switchyard serve`: a body that trickles, stalls or never ends is
cut at its limit with 408 or 413 and the connection closed; a body nested too deep is a 400
naming the limit. Slow clients are raw sockets (`router.testing.raw`)."""

from __future__ import annotations

import functools
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from router import errors
from router.http.body import nested_deeper_than, parse_json
from router.http.deadlines import TICK
from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_completion,
    closed_after_test,
    json_reply,
)
from router.testing.raw import (
    assert_refused,
    chat_body,
    chat_head,
    connect,
    dropped_total,
    read_answer,
)

HEADER_TIMEOUT = 2.0
BODY_IDLE = 0.5
BODY_TOTAL = 1.5
CONFIG = f"""
server:
  watch_config: false
  header_timeout_seconds: {HEADER_TIMEOUT}
  body_idle_timeout_seconds: {BODY_IDLE}
  body_timeout_seconds: {BODY_TOTAL}
  max_body_bytes: 65536
providers:
  up: {{{{plugin: openai, base_url: "{{upstream}}/v1", api_key: sk-upstream}}}}
models:
  chat: {{{{targets: [{{{{provider: up, model: up-model}}}}]}}}}
keys:
  app: {{{{key: sk-body-client}}}}
"""
KEY = "sk-body-client"
LATE = TICK + 1.0  # (a limit is checked every TICK; a loaded machine may take longer still)


def start_router(tmp_path: Path, upstream: str, access_log: bool = True) -> RouterProcess:
    """`llm-switchyard serve` with short limits (stderr is read when it stops: without the
    access log when it serves many requests, lest a full pipe block it)."""
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(upstream=upstream))
    env = {} if access_log else {"LLM_ROUTER_ACCESS_LOG": "false"}
    return RouterProcess(path, env=env).start()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.set_default("/v1/chat/completions", json_reply(chat_completion("hi")))
        yield fake


@pytest.fixture(scope="module")
def router(tmp_path_factory, upstream) -> Iterator[RouterProcess]:
    process = start_router(tmp_path_factory.mktemp("body"), upstream.url, access_log=False)
    try:
        yield process
    finally:
        process.stop()


request_head = functools.partial(chat_head, KEY)


# -- time and size ---------------------------------------------------------------------------


def test_a_body_trickling_a_byte_at_a_time_gets_408_at_the_body_timeout(router):
    before = dropped_total(router, "body_timeout")
    body = chat_body()
    sock = connect(router.port)
    sock.sendall(request_head(len(body)))
    headers_sent = time.monotonic()

    def trickle() -> None:
        for i in range(len(body)):
            try:
                sock.send(body[i : i + 1])
            except OSError:
                return
            time.sleep(BODY_IDLE / 5)

    threading.Thread(target=trickle, daemon=True).start()
    status, headers, answer = read_answer(sock)
    elapsed = time.monotonic() - headers_sent
    message = assert_refused(status, headers, answer, 408, "request_timeout")
    assert f"did not arrive within {BODY_TOTAL:g} s" in message
    assert BODY_TOTAL <= elapsed < BODY_TOTAL + LATE
    assert dropped_total(router, "body_timeout") == before + 1


def test_a_stalled_body_gets_408_at_the_idle_timeout(router):
    before = dropped_total(router, "body_idle_timeout")
    body = chat_body()
    sock = connect(router.port)
    sock.sendall(request_head(len(body)) + body[:10])
    sent = time.monotonic()
    status, headers, answer = read_answer(sock)
    message = assert_refused(status, headers, answer, 408, "request_timeout")
    assert f"for {BODY_IDLE:g} s" in message
    assert BODY_IDLE <= time.monotonic() - sent < BODY_IDLE + LATE
    assert dropped_total(router, "body_idle_timeout") == before + 1


def test_a_chunked_body_announcing_2_56_bytes_is_cut_at_max_body_bytes(router):
    sock = connect(router.port)
    head = request_head(None, b"transfer-encoding: chunked\r\n")
    sock.sendall(head + b"%x\r\n" % (1 << 56) + b"a" * 70_000)
    status, headers, body = read_answer(sock)  # read_answer returns once the server closed
    message = assert_refused(status, headers, body, 413, "request_too_large")
    assert "larger than 65536 bytes" in message


def test_a_reload_changes_the_body_limits_but_not_the_connection_limits(tmp_path, upstream):
    router = start_router(tmp_path, upstream.url)
    try:
        assert router.process is not None
        config = tmp_path / "router.yaml"
        hash_before = httpx.get(router.url + "/health").json()["config"]
        text = config.read_text()
        text = text.replace(
            f"header_timeout_seconds: {HEADER_TIMEOUT}", "header_timeout_seconds: 0.5"
        )
        text = text.replace(
            f"body_idle_timeout_seconds: {BODY_IDLE}", "body_idle_timeout_seconds: 1.0"
        )
        config.write_text(text)
        router.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while httpx.get(router.url + "/health").json()["config"] == hash_before:
            assert time.monotonic() < deadline, "the reload did not happen"
            time.sleep(0.05)
        slow = connect(router.port)
        slow.sendall(request_head(2)[:10])
        opened = time.monotonic()
        body = chat_body()
        stalled = connect(router.port)
        stalled.sendall(request_head(len(body)) + body[:10])
        sent = time.monotonic()
        assert_refused(*read_answer(stalled), 408, "request_timeout")
        assert 1.0 <= time.monotonic() - sent < 1.0 + LATE  # the new body idle limit
        assert_refused(*read_answer(slow), 408, "request_timeout")
        assert time.monotonic() - opened >= HEADER_TIMEOUT  # the header limit of the start
    finally:
        _, err = router.stop()
    # The body's 408 has its access-log line (the slow headers' drop has none: no request).
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["event"] == "request"]
    assert [(r["status"], r["error"]) for r in requests] == [(408, "request_timeout")]
    assert [line["reason"] for line in lines if line["event"] == "connection_dropped"] == [
        "header_timeout"
    ]


# -- JSON depth ------------------------------------------------------------------------------


def nested(levels: int) -> object:
    """`levels` arrays, one inside the other."""
    value: object = "deep"
    for _ in range(levels):
        value = [value]
    return value


def test_deeply_nested_bodies_are_400_naming_the_limit_with_one_access_log_line(tmp_path, upstream):
    router = start_router(tmp_path, upstream.url)
    try:
        for levels in (200, 1000):
            content = b"[" * levels + b'"deep"' + b"]" * levels  # (orjson writes 254 at most)
            body = b'{"model":"chat","messages":[{"role":"user","content":' + content + b"}]}"
            response = httpx.post(
                router.url + "/v1/chat/completions",
                content=body,
                headers={"authorization": f"Bearer {KEY}", "x-request-id": f"deep-{levels}"},
            )
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error"
            assert error["param"] == "body"
            assert error["message"] == "the request body is nested deeper than 64 levels"
        # At the limit a body passes (the body, messages and a message are 3 levels).
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key=KEY, max_retries=0)
        )
        reply = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": nested(61)}]
        )
        assert reply.choices[0].message.content == "hi"
        with pytest.raises(openai.BadRequestError, match="deeper than 64 levels"):
            client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": nested(62)}]
            )
    finally:
        _, err = router.stop()
    for levels in (200, 1000):
        lines = [line for line in err.decode().splitlines() if f'"deep-{levels}"' in line]
        assert len(lines) == 1, err.decode()[-2000:]
        line = json.loads(lines[0])
        assert (line["event"], line["status"]) == ("request", 400)


@pytest.mark.parametrize(
    ("value", "deeper_than_3"),
    [
        ({"a": {"b": [1]}}, False),
        ({"a": {"b": [[1]]}}, True),
        ([[[{}]]], True),
        ([[["x"]], {"k": [1]}], False),
        ([[["x"]], {"k": [{}]}], True),
        ({"text": "[[[[[{{{{{" * 10}, False),  # brackets in strings are not nesting
        ("[[[[[[[[", False),
        (7, False),
    ],
)
def test_nesting_is_measured_over_arrays_and_objects_only(value, deeper_than_3):
    raw = orjson.dumps(value)
    assert nested_deeper_than(orjson.loads(raw), 3) is deeper_than_3
    if deeper_than_3:
        with pytest.raises(errors.InvalidRequest, match="nested deeper than 3 levels"):
            parse_json(raw, 3)
    else:
        assert parse_json(raw, 3) == value
