"""Upstream answers that are 2xx but no answer at all, through `llm-switchyard serve`: a chat
completion or completion without a list of `choices`, embeddings without a list of `data`.
Each fails its attempt as a malformed upstream answer (502 `malformed_upstream_response`), so
that a fallback target answers instead, rather than passing a 200 no client can read."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_completion,
    closed_after_test,
    json_reply,
)

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
