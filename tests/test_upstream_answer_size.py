"""Large upstream answers through `llm-switchyard serve`: real ones arrive whole, however
large; one past `providers.<name>.max_answer_bytes` (an endless body, a decompression
bomb, an event that never ends) or with a head past 1 MiB fails its attempt as a malformed
answer, at once and within bounded memory, and the next target answers."""

from __future__ import annotations

import contextlib
import gzip
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import orjson
import pytest

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunk,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)
from router.testing.fake_upstream import Reply
from router.testing.raw import raw_server

MIB = 1024 * 1024
CONFIG = """
server: {{watch_config: false}}
providers:
  odd: {{plugin: openai, base_url: {odd}/v1, api_key: sk-odd{most}}}
  good: {{plugin: openai, base_url: {good}/v1, api_key: sk-good}}
models:
  alone: {{targets: [{{provider: odd, model: m}}], retries: {{attempts: 0}}}}
  backed:
    targets: [{{provider: odd, model: m}}, {{provider: good, model: m}}]
    retries: {{attempts: 0}}
keys:
  app: {{key: sk-app}}
"""
HI = [{"role": "user", "content": "hi"}]


def _gzipped(payload: bytes) -> Reply:
    body = gzip.compress(payload, 1)
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    return Reply(200, headers, body)


def _endless(kind: str = "body") -> contextlib.AbstractContextManager[str]:
    """A server answering every request with a head and a chunked body that never ends: a
    200 JSON head and x's (`body`), or a JSON text that never closes (`json`, under a 500
    head for `error`); or a head whose header lines never end (`head`). It writes until
    the reader goes away."""
    piece = b"x" * 65536
    frame = b"%x\r\n%b\r\n" % (len(piece), piece)
    status = b"500 Internal Server Error" if kind == "error" else b"200 OK"
    head = b"HTTP/1.1 %b\r\ncontent-type: application/json\r\n" % status
    if kind == "head":
        frame = b"x-filler: " + b"h" * 8000 + b"\r\n"
    else:
        head += b"transfer-encoding: chunked\r\n\r\n"
        if kind in ("json", "error"):
            head += b'7\r\n{"a": "\r\n'

    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(head)
        while True:
            conn.sendall(frame)

    return raw_server(answer)


def _serve(tmp_path: Path, odd: str, good: str, most: int | None = None) -> RouterProcess:
    """The router, `odd`'s `max_answer_bytes` `most` (None: the default)."""
    path = tmp_path / "router.yaml"
    limit = "" if most is None else f", max_answer_bytes: {most}"
    path.write_text(CONFIG.format(odd=odd, good=good, most=limit))
    return RouterProcess(path)


def _client(router: RouterProcess) -> openai.OpenAI:
    client = openai.OpenAI(base_url=router.base_url, api_key="sk-app", max_retries=0, timeout=20)
    return closed_after_test(client)


def _peak_kb(router: RouterProcess) -> int:
    """The router's peak resident memory so far, in KB."""
    assert router.process is not None
    status = Path(f"/proc/{router.process.pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1])


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as odd, FakeUpstream() as good:
        good.set_default("/v1/chat/completions", json_reply(chat_completion("from good")))
        yield odd, good


def test_answers_of_many_megabytes_arrive_whole(tmp_path: Path, upstreams) -> None:
    """Answers past the connection's read buffer (256 KB), plain and gzipped: a JSON answer
    is read to its end, where one once waited for a reader that never came."""
    odd, good = upstreams
    text = "word " * 600_000  # 3 MB
    vectors = [[i / 7 for i in range(1536)] for _ in range(100)]  # 3 MB of floats
    embeddings = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
        ],
        "model": "m",
        "usage": {"prompt_tokens": 100, "total_tokens": 100},
    }
    odd.add("/v1/chat/completions", json_reply(chat_completion(text)))
    odd.add("/v1/chat/completions", _gzipped(orjson.dumps(chat_completion(text))))
    odd.set_default("/v1/embeddings", json_reply(embeddings))
    with _serve(tmp_path, odd.url, good.url) as router:
        client = _client(router)
        for _ in range(2):
            answer = client.chat.completions.create(model="alone", messages=HI)
            assert answer.choices[0].message.content == text
        got = client.embeddings.create(model="alone", input=["hi"] * 100, encoding_format="float")
        assert [d.embedding for d in got.data] == vectors


def test_an_answer_past_max_answer_bytes_fails_over_within_bounded_memory(
    tmp_path: Path, upstreams
) -> None:
    odd, good = upstreams
    bomb = _gzipped(b'{"choices": "' + b"a" * (128 * MIB) + b'"}')  # 128 MB once decompressed
    odd.add("/v1/chat/completions", json_reply(chat_completion("w " * MIB)), bomb, bomb)
    with _endless() as endless, _serve(tmp_path, odd.url, good.url, MIB) as router:
        client = _client(router)
        idle = _peak_kb(router)
        for _ in range(2):  # 2 MB of JSON, then a bomb: the good target answers instead
            answer = client.chat.completions.with_raw_response.create(model="backed", messages=HI)
            assert answer.headers["x-router-provider"] == "good"
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="alone", messages=HI)
        assert caught.value.status_code == 502
        error = caught.value.body
        assert isinstance(error, dict) and error["code"] == "malformed_upstream_response"
        assert "larger than 1,048,576 bytes (max_answer_bytes)" in error["message"]
        assert _peak_kb(router) - idle < 40 * 1024  # what a 1 MB limit costs, not 128 MB

    with _serve(tmp_path, endless, good.url) as router:  # the default: 64 MiB
        client = _client(router)
        began = time.monotonic()
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="alone", messages=HI)
        assert caught.value.status_code == 502 and time.monotonic() - began < 10
        assert "larger than 67,108,864 bytes (max_answer_bytes)" in str(caught.value)


def test_a_head_that_never_ends_fails_over_within_bounded_memory(tmp_path: Path, upstreams) -> None:
    _, good = upstreams
    with _endless("head") as endless, _serve(tmp_path, endless, good.url) as router:
        client = _client(router)
        idle = _peak_kb(router)
        for stream in (False, True):
            answer = client.chat.completions.with_raw_response.create(
                model="backed", messages=HI, stream=stream
            )
            assert answer.headers["x-router-provider"] == "good"
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="alone", messages=HI)
        assert caught.value.status_code == 502
        assert "head larger than 1,048,576 bytes" in str(caught.value)
        assert _peak_kb(router) - idle < 40 * 1024


@pytest.mark.parametrize("kind", ["body", "json", "error"])
def test_a_stream_request_s_endless_answer_fails_over(tmp_path: Path, upstreams, kind) -> None:
    """An answer to a stream request read whole (an error's body, a JSON answer) or as
    events (a body of no events): past `max_answer_bytes` it fails the attempt."""
    _, good = upstreams
    with _endless(kind) as endless, _serve(tmp_path, endless, good.url, MIB) as router:
        client = _client(router)
        idle = _peak_kb(router)
        answer = client.chat.completions.with_raw_response.create(
            model="backed", messages=HI, stream=True
        )
        assert answer.headers["x-router-provider"] == "good"
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="alone", messages=HI, stream=True)
        assert caught.value.status_code == 502
        assert "larger than 1,048,576 bytes (max_answer_bytes)" in str(caught.value)
        assert _peak_kb(router) - idle < 40 * 1024


def test_a_stream_event_past_max_answer_bytes_fails_its_attempt(tmp_path: Path, upstreams) -> None:
    """Before the first token the next target answers; after it, the stream ends with an
    error event, not with memory filling up."""
    odd, good = upstreams
    endless_event = [b"data: " + b"y" * 65536] * 64  # 4 MB, and never a blank line
    first = chat_chunk({"role": "assistant", "content": "Hel"})
    odd.add("/v1/chat/completions", sse_reply(endless_event), sse_reply([first, *endless_event]))
    good.set_default(
        "/v1/chat/completions",
        sse_reply([chat_chunk({"role": "assistant", "content": "from good"}, "stop"), "[DONE]"]),
    )
    with _serve(tmp_path, odd.url, good.url, MIB) as router:
        client = _client(router)
        stream = client.chat.completions.create(model="backed", messages=HI, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream) == "from good"
        stream = client.chat.completions.create(model="alone", messages=HI, stream=True)
        texts = []
        with pytest.raises(openai.APIError, match="event larger than 1,048,576 bytes"):
            for chunk in stream:
                texts.append(chunk.choices[0].delta.content or "")
        assert texts == ["Hel"]
