"""The other operations KoboiLLM documents, end to end: the official OpenAI SDK (an HTTP
client for rerank) -> `llm-switchyard serve` -> fake LiteLLM proxies. Each operation is
answered, fails over from a proxy that is rate limited to another, and passes the 429's
wait on to the client when no proxy is left."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from llm_router_litellm import testing as fake

from router.testing import FakeUpstream, RouterProcess, closed_after_test

KEY = "sk-litellm-test"
MODELS = (
    "openai/dall-e-3",
    "openai/tts-1",
    "openai/whisper-1",
    "openai/omni-moderation-latest",
    "cohere/rerank-english-v3.0",
)
CONFIG = """
server: {{auth: none}}
providers:
  koboi: {{plugin: litellm, base_url: "{url}/v1", api_key: "${{KOBOI_KEY}}"}}
  koboi-2: {{plugin: litellm, base_url: "{url2}/v1", api_key: "${{KOBOI_KEY}}"}}
models:
{models}
keys: {{}}
"""
OPS = {  # operation: (path, upstream model)
    "images": ("/images/generations", "openai/dall-e-3"),
    "speech": ("/audio/speech", "openai/tts-1"),
    "transcriptions": ("/audio/transcriptions", "openai/whisper-1"),
    "moderations": ("/moderations", "openai/omni-moderation-latest"),
    "rerank": ("/rerank", "cohere/rerank-english-v3.0"),
}


def _models() -> str:
    lines = []
    for op, (_, model) in OPS.items():
        lines += [
            f"  {op}:",
            f"    targets: [{{provider: koboi, model: {model}}},",
            f"              {{provider: koboi-2, model: {model}}}]",
            "    retries: {attempts: 0}",
            f"  {op}-alone:",
            f"    targets: [{{provider: koboi, model: {model}}}]",
            "    retries: {attempts: 0}",
        ]
    return "\n".join(lines)


class Served:
    def __init__(self, tmp: Path) -> None:
        self.proxy, self.backup = FakeUpstream().start(), FakeUpstream().start()
        config = tmp / "router.yaml"
        text = CONFIG.format(url=self.proxy.url, url2=self.backup.url, models=_models())
        config.write_text(text)
        self.router = RouterProcess(config, env={"KOBOI_KEY": KEY})
        self.wav = tmp / "hello.wav"
        with wave.open(str(self.wav), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16_000)
            out.writeframes(b"\x02\x00" * 16_000)

    def stop(self) -> None:
        self.router.stop()
        self.proxy.stop()
        self.backup.stop()


@pytest.fixture(scope="module")
def module_served(tmp_path_factory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("litellm-ops"))
    try:
        served.router.start()
        yield served
    finally:
        served.stop()


@pytest.fixture
def served(module_served: Served) -> Served:
    """Both proxies answer like LiteLLM; each test starts from a clean slate."""
    for upstream in (module_served.proxy, module_served.backup):
        upstream.reset()
        fake.FakeLiteLLMProxy(keys=[KEY], models=MODELS).install(upstream)
    return module_served


def _client(router: RouterProcess) -> openai.OpenAI:
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=20)
    )


def test_each_operation_is_served(served):
    router, wav = served.router, served.wav
    client = _client(router)
    images = client.images.generate(model="images", prompt="otter", response_format="b64_json")
    assert images.data[0].b64_json == fake.replies.PNG_B64
    with client.audio.speech.with_streaming_response.create(
        model="speech", voice="alloy", input="hi", response_format="wav"
    ) as speech:
        assert speech.headers["content-type"] == "audio/mpeg"  # the proxy's, passed on
        assert speech.read().startswith(b"\xff\xfb")
    with wav.open("rb") as audio:
        text = client.audio.transcriptions.create(model="transcriptions", file=audio)
    assert text.text == f"{wav.stat().st_size} bytes transcribed"
    flagged = client.moderations.create(model="moderations", input="I will kill it")
    assert flagged.results[0].categories.violence
    ranked = httpx.post(
        router.base_url + "/rerank",
        json={"model": "rerank", "query": "red apple", "documents": ["pear", "red apple"]},
    ).json()
    assert [r["index"] for r in ranked["results"]] == [1, 0]
    assert ranked["meta"]["billed_units"] == {"search_units": 1}
    assert {r.headers["authorization"] for r in served.proxy.requests} == {f"Bearer {KEY}"}
    assert not served.backup.requests


@pytest.mark.parametrize("op", OPS)
def test_a_rate_limited_proxy_fails_over_to_the_next(served, op):
    path, _ = OPS[op]
    served.proxy.add(f"/v1{path}", fake.upstream_rate_limited(retry_after=30))
    answer = _call(served, op, op)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-router-provider"] == "koboi-2"
    assert len(served.backup.received(f"/v1{path}")) == 1


@pytest.mark.parametrize("op", OPS)
def test_a_429_passes_its_wait_to_the_client(served, op):
    path, _ = OPS[op]
    served.proxy.add(f"/v1{path}", fake.upstream_rate_limited(retry_after=7))
    answer = _call(served, op, f"{op}-alone")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    assert answer.json()["error"]["type"] == "rate_limit_error"


def _call(served: Served, op: str, model: str) -> httpx.Response:
    url = served.router.base_url + OPS[op][0]
    if op == "transcriptions":
        with served.wav.open("rb") as audio:
            return httpx.post(url, data={"model": model}, files={"file": ("a.wav", audio)})
    body = {
        "images": {"prompt": "otter"},
        "speech": {"input": "hi", "voice": "alloy"},
        "moderations": {"input": "hi"},
        "rerank": {"query": "q", "documents": ["a", "b"]},
    }[op]
    return httpx.post(url, json={"model": model, **body}, timeout=20)
