"""Image generation and rerank, the optional endpoints the Tokligence docs list, end to end:
the official OpenAI SDK (an HTTP client for rerank) -> `llm-switchyard serve` -> fake gateways.
A gateway's 429 fails over to the next gateway, or reaches the client with its wait; a
gateway without the endpoint (the open-source one) moves the request on; an operation the
gateway does not serve is a 400 naming the model and the operation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from llm_router_tokligence import testing as fake

from router.testing import FakeUpstream, RouterProcess, closed_after_test

KEY = "tok_gateway_secret"
CONFIG = """
server: {{auth: none}}
providers:
  hosted: {{plugin: tokligence, base_url: "{hosted}/v1", api_key: "${{TOK_KEY}}"}}
  second: {{plugin: tokligence, base_url: "{second}/v1", api_key: "${{TOK_KEY}}"}}
  open-source: {{plugin: tokligence, base_url: "{open}/v1", api_key: "${{TOK_KEY}}"}}
  no-extras:
    plugin: tokligence
    base_url: "{open}/v1"
    api_key: "${{TOK_KEY}}"
    settings: {{images: false, rerank: false}}
models:
  images:
    targets: [{{provider: hosted, model: dall-e-3}}, {{provider: second, model: dall-e-3}}]
    retries: {{attempts: 0}}
  rerank:
    targets: [{{provider: hosted, model: rerank-v1}}, {{provider: second, model: rerank-v1}}]
    retries: {{attempts: 0}}
  images-alone:
    targets: [{{provider: hosted, model: dall-e-3}}]
    retries: {{attempts: 0}}
  rerank-alone:
    targets: [{{provider: hosted, model: rerank-v1}}]
    retries: {{attempts: 0}}
  images-open-first:
    targets: [{{provider: open-source, model: dall-e-3}}, {{provider: second, model: dall-e-3}}]
  chat-only:
    targets: [{{provider: no-extras, model: loopback}}]
keys: {{}}
"""
MODELS = ("loopback", "dall-e-3", "rerank-v1")


class Served:
    def __init__(self, tmp: Path) -> None:
        self.hosted, self.second, self.open = (FakeUpstream().start() for _ in range(3))
        config = tmp / "router.yaml"
        config.write_text(
            CONFIG.format(hosted=self.hosted.url, second=self.second.url, open=self.open.url)
        )
        self.router = RouterProcess(config, env={"TOK_KEY": KEY})
        self.client = closed_after_test(
            openai.OpenAI(base_url=self.router.base_url, api_key="x", max_retries=0, timeout=20)
        )

    def reset(self) -> None:
        gateways = ((self.hosted, True), (self.second, True), (self.open, False))
        for upstream, extras in gateways:
            upstream.reset()
            keys = frozenset({KEY})
            fake.TokligenceGateway(keys, MODELS, images=extras, rerank=extras).install(upstream)

    def stop(self) -> None:
        self.router.stop()
        for upstream in (self.hosted, self.second, self.open):
            upstream.stop()


@pytest.fixture(scope="module")
def module_served(tmp_path_factory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("tokligence-ops"))
    try:
        served.router.start()
        yield served
    finally:
        served.stop()


@pytest.fixture
def served(module_served: Served) -> Served:
    module_served.reset()
    return module_served


def _rerank(served: Served, model: str) -> httpx.Response:
    body = {"model": model, "query": "red apple", "documents": ["pear", "a red apple"]}
    return httpx.post(served.router.base_url + "/rerank", json={**body, "top_n": 1}, timeout=20)


def test_images_and_rerank_are_served(served):
    images = served.client.images.generate(model="images", prompt="x", response_format="b64_json")
    assert images.data[0].b64_json == fake.PNG_B64
    ranked = _rerank(served, "rerank")
    assert ranked.status_code == 200
    assert ranked.json()["results"] == [{"index": 1, "relevance_score": 1.0}]
    (sent,) = served.hosted.received(fake.RERANK_PATH)
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json()["top_n"] == 1


def test_a_rate_limited_gateway_fails_over_to_the_next(served):
    reset = int(time.time()) + 60
    served.hosted.add(fake.IMAGES_PATH, fake.rate_limited(reset=reset))
    served.hosted.add(fake.RERANK_PATH, fake.rate_limited(reset=reset))
    raw = served.client.images.with_raw_response.generate(model="images", prompt="x")
    assert raw.headers["x-router-provider"] == "second"
    assert raw.parse().data[0].url == "https://images.example/tok.png"
    ranked = _rerank(served, "rerank")
    assert ranked.headers["x-router-provider"] == "second"
    assert len(served.second.received(fake.RERANK_PATH)) == 1


def test_a_429_passes_its_wait_to_the_client(served):
    served.hosted.add(fake.IMAGES_PATH, fake.rate_limited(reset=int(time.time()) + 9))
    served.hosted.add(fake.RERANK_PATH, fake.rate_limited(reset=int(time.time()) + 9))
    with pytest.raises(openai.RateLimitError) as caught:
        served.client.images.generate(model="images-alone", prompt="x")
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 9
    ranked = _rerank(served, "rerank-alone")
    assert ranked.status_code == 429 and 1 <= int(ranked.headers["retry-after"]) <= 9


def test_a_gateway_without_the_endpoint_moves_the_request_on(served):
    raw = served.client.images.with_raw_response.generate(model="images-open-first", prompt="x")
    assert raw.headers["x-router-provider"] == "second"
    assert len(served.open.received(fake.IMAGES_PATH)) == 1  # answered chi's 404


def test_what_the_gateway_does_not_serve_is_a_400_naming_model_and_operation(served):
    speech = served.client.audio.speech.with_streaming_response.create
    with (
        pytest.raises(openai.BadRequestError) as caught,
        speech(model="images", voice="alloy", input="hi"),
    ):
        pass
    assert caught.value.message.endswith(
        "model 'images' does not serve speech (POST /v1/audio/speech); it serves: chat, "
        "embeddings, images, rerank, responses, messages, count_tokens, input_tokens"
    )
    with pytest.raises(openai.BadRequestError) as off:
        served.client.images.generate(model="chat-only", prompt="x")
    assert "model 'chat-only' does not serve images" in off.value.message
    assert not served.open.received(fake.IMAGES_PATH)
