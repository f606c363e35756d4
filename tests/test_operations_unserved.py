"""What a model's targets do not serve: Telkom serves chat only and Telnyx chat and embeddings,
so images, speech, transcriptions, moderations and rerank for their models are a 400 naming
the model and the operation, through `llm-switchyard serve`, before anything reaches an
upstream (an upload included); `llm-switchyard explain` says what each model and target serve."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import httpx
import openai
import pytest

from router.cli import main
from router.testing import FakeUpstream, RouterProcess, closed_after_test

pytest.importorskip("llm_router_telkom")
pytest.importorskip("llm_router_telnyx")

CONFIG = """
server: {{auth: none}}
providers:
  telkom: {{plugin: telkom, base_url: "{url}/telkom", api_key: "${{TELKOM_KEY}}"}}
  telnyx: {{plugin: telnyx, base_url: "{url}/telnyx", api_key: "${{TELNYX_KEY}}"}}
  open: {{plugin: openai, base_url: "{url}/v1"}}
models:
  telkom-ai: {{targets: [{{provider: telkom, model: telkom-ai}}]}}
  telnyx-llama: {{targets: [{{provider: telnyx, model: meta-llama/Llama-3.3-70B-Instruct}}]}}
  mixed: {{targets: [{{provider: telkom, model: telkom-ai}}, {{provider: open, model: gpt}}]}}
keys: {{}}
"""
ENV = {"TELKOM_KEY": "telkom-key-0123456789abcdef012345", "TELNYX_KEY": "KEY0123telnyx"}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[RouterProcess, FakeUpstream]]:
    tmp = tmp_path_factory.mktemp("unserved")
    upstream = FakeUpstream().start()
    config = tmp / "router.yaml"
    config.write_text(CONFIG.format(url=upstream.url))
    router = RouterProcess(config, env=ENV)
    try:
        router.start()
        yield router, upstream
    finally:
        router.stop()
        upstream.stop()


@pytest.mark.parametrize(
    ("model", "serves"),
    [
        # (the Responses and Messages APIs: served by translation to chat)
        ("telkom-ai", "chat, responses, messages, count_tokens, input_tokens"),
        ("telnyx-llama", "chat, embeddings, responses, messages, count_tokens, input_tokens"),
    ],
)
def test_operations_a_model_does_not_serve_are_a_400_naming_both(served, tmp_path, model, serves):
    router, upstream = served
    client = closed_after_test(openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0))
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"RIFF....WAVE" + bytes(2000))
    calls = {
        "images": lambda: client.images.generate(model=model, prompt="x"),
        "transcriptions": lambda: client.audio.transcriptions.create(
            model=model, file=("a.wav", wav.read_bytes())
        ),
        "moderations": lambda: client.moderations.create(model=model, input="x"),
    }
    paths = {
        "images": "/images/generations",
        "transcriptions": "/audio/transcriptions",
        "moderations": "/moderations",
    }
    for op, call in calls.items():
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.code == "unsupported_operation"
        assert caught.value.param == "model"
        assert caught.value.body["message"] == (  # type: ignore[index]
            f"model '{model}' does not serve {op} (POST /v1{paths[op]}); it serves: {serves}"
        )
    for op, path, body in (
        ("speech", "/audio/speech", {"input": "x", "voice": "alloy"}),
        ("rerank", "/rerank", {"query": "q", "documents": ["a"]}),
    ):
        answer = httpx.post(router.base_url + path, json={"model": model, **body})
        assert answer.status_code == 400
        assert answer.json()["error"]["message"].startswith(
            f"model '{model}' does not serve {op} (POST /v1{path})"
        )
    assert not upstream.requests


def test_explain_says_what_a_model_and_each_target_serve(tmp_path, capsys, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url="http://127.0.0.1:9")))
    assert main(["explain", "--config", str(path), "--model", "mixed"]) == 0
    out = capsys.readouterr().out
    assert (
        "operations: chat, completions, embeddings, images, image_edits, image_variations, "
        "speech, transcriptions, translations, " in out
    )
    # (by translation)
    only = "     serves only: chat, responses, messages, count_tokens, input_tokens\n"
    assert "  1. telkom/telkom-ai  [" in out and only in out
    assert (
        "limits: request body up to 4194304 bytes (image_edits 52428800, image_variations "
        "5242880, transcriptions 26214400, translations 26214400)" in out
    )
    assert main(["explain", "--config", str(path), "--model", "telkom-ai"]) == 0
    out = capsys.readouterr().out
    assert "operations: chat, responses, messages, count_tokens, input_tokens\n" in out
    assert "serves only" not in out
