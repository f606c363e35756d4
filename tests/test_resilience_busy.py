"""`least_busy` sees streams: a stream counts as in flight at its target until it ends,
however it ends (finished, client gone, broken and continued elsewhere, never sent), and
the count goes back exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from router.routing import recovery
from router.testing import (
    RouterProcess,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)
from router.testing.fake_upstream import Received, Reply

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
PIECES = ["one", " two", " three"]
PACE = 0.4  # seconds between the frames of a slow stream
CONFIG = """
server: {{auth: none}}
providers:
  a: {{plugin: openai, base_url: "{url}/a/v1"}}
  b: {{plugin: openai, base_url: "{url}/b/v1"}}
models:
  chat:
    strategy: least_busy
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
  resume:
    strategy: least_busy
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    stream_recovery: continue
"""


def _answers(name: str) -> Callable[[Received], Reply]:
    """A slow stream when asked for one, else a JSON answer naming the target."""

    def reply(received: Received) -> Reply:
        if received.json().get("stream"):
            return sse_reply(chat_chunks(PIECES, model=f"m{name}"), delay=PACE)
        return json_reply(chat_completion(f"from {name}", model=f"m{name}"))

    return reply


def _client(router) -> openai.OpenAI:
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=15)
    )


def _ask(client: openai.OpenAI, model: str = "chat") -> str:
    reply = client.chat.completions.create(model=model, messages=MSGS)
    return reply.choices[0].message.content


def _open_stream(client: openai.OpenAI, model: str = "chat"):
    """(provider that answers, stream, first content) of a stream read to its first token."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MSGS, stream=True)
    stream = raw.parse()
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            return raw.headers["x-router-provider"], stream, chunk.choices[0].delta.content
    raise AssertionError("the stream ended before its first token")


def _rest(stream) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def _until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_least_busy_counts_a_stream_until_it_ends(fake_upstream, tmp_path: Path):
    """Through `llm-switchyard serve`: long streams on a send new requests to b; once they
    end (read to the end, or left by the client), both targets are idle again."""
    fake_upstream.set_default(A, _answers("a"))
    fake_upstream.set_default(B, _answers("b"))
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(url=fake_upstream.url))
    with RouterProcess(path) as router:
        client = _client(router)
        provider, first, text = _open_stream(client)  # both idle: a, the first listed
        assert provider == "a"
        assert [_ask(client) for _ in range(2)] == ["from b"] * 2  # a is streaming
        assert text + _rest(first) == "".join(PIECES)
        assert _ask(client) == "from a"  # the finished stream no longer counts

        on_a, left_a, _ = _open_stream(client)
        on_b, left_b, _ = _open_stream(client)  # a is busy with the first
        assert (on_a, on_b) == ("a", "b")
        left_a.close()  # the clients go away mid-answer
        left_b.close()
        _until(lambda: _ask(client) == "from a", "a to be idle again")
        provider, last, _ = _open_stream(client)
        assert provider == "a"
        assert _ask(client) == "from b"  # b is idle too: its left stream was given back
        last.close()


@pytest.fixture
def router(fake_upstream, router_server):
    return router_server(CONFIG.format(url=fake_upstream.url))


def _counts(router, model: str = "chat") -> tuple[int, int]:
    """(a, b) in flight, as the running graph has them."""
    targets = router.app.state.router.graph.routes[model].targets
    return targets[0].in_flight, targets[1].in_flight


def test_a_continued_stream_counts_at_the_target_continuing_it(router, fake_upstream):
    broken = chat_chunks(["Hel", "lo", " wor"], model="ma")
    fake_upstream.add(A, sse_reply(broken, delay=PACE, drop_after_frames=4))
    fake_upstream.add(B, json_reply(chat_completion("from b", model="mb")))
    rest = sse_reply(chat_chunks(["ld", "!"], model="mb"), delay=PACE)
    fake_upstream.add(B, rest)  # the continuation
    fake_upstream.add(A, json_reply(chat_completion("from a", model="ma")))
    client = _client(router)

    provider, stream, text = _open_stream(client, "resume")
    assert provider == "a" and text == "Hel"
    assert _counts(router, "resume") == (1, 0)
    assert _ask(client, "resume") == "from b"  # a is streaming
    for chunk in stream:
        text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        if text.endswith("ld"):  # a broke after " wor": b is continuing the answer now
            break
    assert text == "Hello world"
    assert _counts(router, "resume") == (0, 1)
    assert _ask(client, "resume") == "from a"  # b is streaming the rest
    assert text + _rest(stream) == "Hello world!"
    # (given back once the last byte is sent: after the client may have read it)
    _until(lambda: _counts(router, "resume") == (0, 0), "both counts to be given back")


def test_a_stream_left_by_its_client_gives_its_count_back(router, fake_upstream):
    fake_upstream.set_default(A, _answers("a"))
    provider, stream, _ = _open_stream(_client(router))
    assert provider == "a" and _counts(router) == (1, 0)
    stream.close()
    _until(lambda: _counts(router) == (0, 0), "the left stream's count to be given back")
    _until(lambda: A in fake_upstream.disconnects, "the upstream stream to be closed")


def test_a_primed_stream_whose_answer_is_never_sent_gives_its_count_back(
    router, fake_upstream, monkeypatch
):
    """An error between priming the stream and sending its answer (simulated here: nothing
    in that window fails today) still closes the upstream and gives the count back."""

    def broken(*args: object) -> None:
        raise RuntimeError("simulated failure before the answer is sent")

    monkeypatch.setattr(recovery, "enable", broken)
    fake_upstream.set_default(A, _answers("a"))
    body = {"model": "chat", "messages": MSGS, "stream": True}
    response = httpx.post(router.base_url + "/chat/completions", json=body, timeout=15)
    assert response.status_code == 500
    assert len(fake_upstream.received(A)) == 1
    _until(lambda: A in fake_upstream.disconnects, "the upstream stream to be closed")
    assert _counts(router) == (0, 0)
