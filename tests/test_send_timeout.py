"""`server.send_timeout_seconds` through `llm-switchyard serve`: a client that stops reading
its answer cannot hold a stream open. Once the connection's buffers are full and the client
takes nothing for the timeout, the router closes the connection, ends the request as its
client's (`client_gone` in the access log), closes the upstream's stream, counts and logs
the drop; a client that keeps reading, however long its answer, is never cut."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from router.testing import FakeUpstream, RouterProcess, chat_chunk, closed_after_test, sse_reply
from router.testing.raw import chat_head, dropped_total

WORDS = 100_000  # a stream of about 15 MB: more than a loopback connection's buffers hold
CONFIG = """
server: {{watch_config: false, auth: none, send_timeout_seconds: 1}}
providers:
  m: {{plugin: mock, settings: {{words: {words}}}}}
  up: {{plugin: openai, base_url: "{url}/v1", api_key: sk-up}}
models:
  long: {{targets: [{{provider: m, model: m-1}}]}}
  relayed: {{targets: [{{provider: up, model: up-1}}]}}
"""
PIECE = "w" * 1000
RELAYED = [chat_chunk({"content": PIECE}) for _ in range(10_000)]  # 11 MB of events


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream):
    path = tmp_path_factory.mktemp("send") / "router.yaml"
    path.write_text(CONFIG.format(url=upstream.url, words=WORDS))
    with RouterProcess(path) as served:
        yield served


@pytest.mark.parametrize("model", ["long", "relayed"])
def test_a_client_that_stops_reading_is_dropped_at_the_send_timeout(
    router, upstream, model
) -> None:
    """The mock's stream, or an upstream's, whose own connection is then closed too."""
    upstream.reset()
    upstream.add("/v1/chat/completions", sse_reply([*RELAYED, "[DONE]"]))
    before = dropped_total(router, "send_timeout")
    body = json.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    sock = closed_after_test(socket.socket())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # (set before connecting)
    sock.connect(("127.0.0.1", router.port))
    sock.sendall(chat_head("none", len(body)) + body.encode())
    assert sock.recv(64).startswith(b"HTTP/1.1 200 OK")
    time.sleep(3)  # reading nothing: the router's writes stop, then its clock runs out
    sock.settimeout(10)
    received = b""
    try:
        while chunk := sock.recv(1 << 20):
            received += chunk
    except ConnectionResetError:
        pass  # (what was still buffered is discarded with the connection)
    assert b"data: [DONE]" not in received and len(received) < 10_000_000
    mine = f'"model":"{model}"'.encode()
    line = json.loads(router.wait_for_line(lambda x: b'"client_gone"' in x and mine in x))
    assert (line["model"], line["error"]) == (model, "client_closed_request")
    assert dropped_total(router, "send_timeout") == before + 1
    router.wait_for_line(lambda x: b'"reason":"send_timeout"' in x)  # (once per 10 s at most)
    if model == "relayed":
        deadline = time.monotonic() + 5
        while not upstream.disconnects and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstream.disconnects == ["/v1/chat/completions"]


def test_a_client_that_keeps_reading_gets_the_whole_answer(router) -> None:
    """Pauses shorter than the timeout, while the buffers are full, cut nothing."""
    body = {"model": "long", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    received = b""
    with httpx.stream(
        "POST", router.base_url + "/chat/completions", json=body, timeout=30
    ) as answer:
        for i, chunk in enumerate(answer.iter_raw(1 << 20)):
            received += chunk
            if i < 3:
                time.sleep(0.4)
    assert received.endswith(b"data: [DONE]\n\n")
    words = received.count(b'"content":"') - 1  # (the first chunk's content is empty)
    assert words == WORDS
