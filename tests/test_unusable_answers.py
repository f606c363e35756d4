"""Upstream answers that are no answer at all, through `llm-switchyard serve`: a 2xx chat
completion or completion without a list of `choices`, embeddings without a list of `data`, a
body that does not decode as its `content-encoding` says, bytes that are not HTTP. Each fails
its attempt as a malformed upstream answer (502 `malformed_upstream_response`, not a lost
connection), so that a fallback target answers instead, rather than passing a 200 no client
can read."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_completion,
    closed_after_test,
    json_reply,
)
from router.testing.fake_upstream import Reply

CONFIG = """
server: {{watch_config: false}}
providers:
  bad: {{plugin: openai, base_url: {bad}/v1, api_key: sk-bad}}
  good: {{plugin: openai, base_url: {good}/v1, api_key: sk-good}}
models:
  alone: {{targets: [{{provider: bad, model: m}}], retries: {{attempts: 1}}}}
  backed: {{targets: [{{provider: bad, model: m}}, {{provider: good, model: m}}]}}
keys:
  app: {{key: sk-app}}
"""
HI = [{"role": "user", "content": "hi"}]
EMBEDDINGS = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
    "model": "m",
    "usage": {"prompt_tokens": 1, "total_tokens": 1},
}
COMPLETION = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "text": "ok", "finish_reason": "stop", "logprobs": None}],
}


@pytest.fixture
def router(tmp_path: Path):
    with FakeUpstream() as bad, FakeUpstream() as good:
        bad.set_default(
            "/v1/chat/completions", json_reply({"id": "x", "object": "chat.completion"})
        )
        bad.set_default("/v1/completions", json_reply({"id": "x", "choices": None}))
        bad.set_default("/v1/embeddings", json_reply({"object": "list", "model": "m"}))
        good.set_default("/v1/chat/completions", json_reply(chat_completion("from good")))
        good.set_default("/v1/completions", json_reply(COMPLETION))
        good.set_default("/v1/embeddings", json_reply(EMBEDDINGS))
        path = tmp_path / "router.yaml"
        path.write_text(CONFIG.format(bad=bad.url, good=good.url))
        with RouterProcess(path) as served:
            yield served


def test_an_answer_without_its_list_is_a_malformed_upstream_answer(router: RouterProcess) -> None:
    auth = {"authorization": "Bearer sk-app"}
    with httpx.Client(base_url=router.base_url, headers=auth) as client:
        for path, body, part in (
            ("/chat/completions", {"messages": HI}, "choices"),
            ("/completions", {"prompt": "hi"}, "choices"),
            ("/embeddings", {"input": "hi"}, "data"),
        ):
            answer = client.post(path, json={"model": "alone", **body})
            assert answer.status_code == 502, path
            error = answer.json()["error"]
            assert error["code"] == "malformed_upstream_response"
            assert f"without a list of `{part}`" in error["message"]
        # the translated APIs say it in their own shapes and statuses
        messages = client.post(
            "/messages", json={"model": "alone", "max_tokens": 5, "messages": HI}
        )
        assert messages.status_code == 500  # (Anthropic's API has no 502: its 500 api_error)
        assert messages.json()["type"] == "error"
        assert messages.json()["error"]["type"] == "api_error"
        assert "without a list of `choices`" in messages.json()["error"]["message"]
        responses = client.post("/responses", json={"model": "alone", "input": "hi"})
        assert responses.status_code == 502
        assert responses.json()["error"]["code"] == "malformed_upstream_response"


def test_a_fallback_target_answers_in_its_place(router: RouterProcess) -> None:
    client = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="sk-app", max_retries=0)
    )
    chat = client.chat.completions.with_raw_response.create(model="backed", messages=HI)
    assert chat.parse().choices[0].message.content == "from good"
    assert chat.headers["x-router-provider"] == "good"
    assert int(chat.headers["x-router-attempts"]) >= 2  # (the default retries come first)
    assert client.completions.create(model="backed", prompt="hi").choices[0].text == "ok"
    assert client.embeddings.create(model="backed", input="hi").data[0].embedding == [0.5, 0.25]


@contextlib.contextmanager
def _not_http() -> Iterator[str]:
    """A server that answers every connection with bytes that are not HTTP, then closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed: the test is over
            with conn:
                conn.recv(65536)
                conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


ENCODED = """
server: {{watch_config: false}}
providers:
  gzip: {{plugin: openai, base_url: {gzip}/v1, api_key: sk-1}}
  brotli: {{plugin: openai, base_url: {brotli}/v1, api_key: sk-2}}
  garbage: {{plugin: openai, base_url: {garbage}/v1, api_key: sk-3}}
models:
  gzip: {{targets: [{{provider: gzip, model: m}}], retries: {{attempts: 1}}}}
  brotli: {{targets: [{{provider: brotli, model: m}}], retries: {{attempts: 1}}}}
  garbage: {{targets: [{{provider: garbage, model: m}}], retries: {{attempts: 1}}}}
keys:
  app: {{key: sk-app}}
"""


def test_bytes_that_do_not_decode_or_are_not_http_are_a_malformed_answer(tmp_path: Path) -> None:
    """A body its `content-encoding` does not decode (gzip said, plain JSON sent), an encoding
    the router did not ask for, and bytes that are no HTTP answer."""
    body = orjson.dumps(chat_completion())
    with FakeUpstream() as gzip, FakeUpstream() as brotli, _not_http() as garbage:
        encoded = {"content-type": "application/json"}
        gzip.set_default(
            "/v1/chat/completions", Reply(200, {**encoded, "content-encoding": "gzip"}, body)
        )
        brotli.set_default(
            "/v1/chat/completions", Reply(200, {**encoded, "content-encoding": "br"}, body)
        )
        path = tmp_path / "router.yaml"
        path.write_text(ENCODED.format(gzip=gzip.url, brotli=brotli.url, garbage=garbage))
        auth = {"authorization": "Bearer sk-app"}
        with (
            RouterProcess(path) as router,
            httpx.Client(base_url=router.base_url, headers=auth) as client,
        ):
            for model, words in (
                ("gzip", "body does not decode"),
                ("brotli", "encoding not asked for (br)"),
                ("garbage", "a malformed answer"),
            ):
                for stream in (False, True):
                    answer = client.post(
                        "/chat/completions", json={"model": model, "messages": HI, "stream": stream}
                    )
                    assert answer.status_code == 502, (model, stream)
                    error = answer.json()["error"]
                    assert error["code"] == "malformed_upstream_response", (model, stream, error)
                    assert f"upstream '{model}' sent " in error["message"]
                    assert words in error["message"]
