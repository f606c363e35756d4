"""Speech and transcriptions go through the whole routing graph like chat, through
`llm-switchyard serve`: a key's allow-list, header rules both ways (an upload included),
circuit breakers, the access log, metrics and traces."""

from __future__ import annotations

import textwrap
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router.observability import tracing
from router.testing import FakeUpstream, RouterProcess, RouterServer, closed_after_test
from router.testing.media import UploadReader, openai_error, speech_reply

CONFIG = """
providers:
  flaky: {{plugin: openai, base_url: "{url}/flaky/v1"}}
  steady: {{plugin: openai, base_url: "{url}/v1"}}
models:
  voice:
    targets: [{{provider: flaky, model: tts-a}}, {{provider: steady, model: tts-b}}]
    retries: {{attempts: 0}}
    breaker: {{consecutive_failures: 2, open_for: 60}}
  whisper:
    targets: [{{provider: steady, model: whisper-1}}]
keys:
  app: {{key: "${{APP_KEY}}"}}
  speaker: {{key: "${{SPEAKER_KEY}}", models: [voice]}}
header_rewrites:
  - {{set: {{x-caller: "{{key}}/{{model}}"}}}}
  - {{direction: response, set: {{x-served-by: "{{provider}}"}}}}
"""
ENV = {"APP_KEY": "sk-app-1234", "SPEAKER_KEY": "sk-speaker-1234"}
AUDIO = b"\xff\xfb\x10\xc0" + bytes(4000)


def _config(tmp: Path, url: str) -> Path:
    path = tmp / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url=url)))
    return path


def _wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 8000)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[RouterProcess, FakeUpstream, Path]]:
    tmp = tmp_path_factory.mktemp("graph")
    upstream = FakeUpstream().start()
    router = RouterProcess(_config(tmp, upstream.url), env=ENV)
    try:
        router.start()
        yield router, upstream, _wav(tmp / "a.wav")
    finally:
        router.stop()
        upstream.stop()


def _client(router: RouterProcess, key: str = "sk-app-1234") -> openai.OpenAI:
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key=key, max_retries=0, timeout=20)
    )


def test_a_keys_allow_list_applies(served):
    router, upstream, wav = served
    with pytest.raises(openai.PermissionDeniedError), wav.open("rb") as audio:
        _client(router, "sk-speaker-1234").audio.transcriptions.create(model="whisper", file=audio)
    with pytest.raises(openai.AuthenticationError):
        _client(router, "sk-nobody").images.generate(model="voice", prompt="x")
    assert not upstream.received("/v1/audio/transcriptions")


def test_header_rules_apply_to_an_upload_and_a_binary_answer(served):
    router, upstream, wav = served
    reader = UploadReader()
    upstream.set_streaming("/v1/audio/transcriptions", reader)
    with wav.open("rb") as audio:
        raw = _client(router).audio.transcriptions.with_raw_response.create(
            model="whisper", file=audio
        )
    assert raw.headers["x-served-by"] == "steady"
    (sent,) = upstream.received("/v1/audio/transcriptions")
    assert sent.headers["x-caller"] == "app/whisper"
    assert reader.uploads[0].size == wav.stat().st_size


def test_a_breaker_opens_on_a_failing_speech_target_and_the_access_log_says_so(served):
    router, upstream, _ = served
    upstream.set_default("/flaky/v1/audio/speech", openai_error(500, "down", "server_error", None))
    upstream.set_default("/v1/audio/speech", speech_reply(AUDIO))
    speech = _client(router).audio.speech.with_streaming_response.create
    for _ in range(3):
        with speech(model="voice", voice="alloy", input="hi") as response:
            assert response.read() == AUDIO
            assert response.headers["x-served-by"] == "steady"
    assert len(upstream.received("/flaky/v1/audio/speech")) == 2  # then the breaker opened
    deadline = time.monotonic() + 10  # each line is written once its answer's last byte went
    while len(lines := _speech_lines(router)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert [len(line["attempts"]) for line in lines[-3:]] == [2, 2, 1]
    assert all(line["bytes_sent"] == len(AUDIO) for line in lines[-3:])
    assert lines[-1]["provider"] == "steady" and lines[-1]["outcome"] == "answered"
    metrics = httpx.get(router.url + "/metrics").text
    assert (
        'llm_router_requests_total{model="voice",operation="speech",status="200",outcome="answered"'
        in metrics
    )
    assert (
        'llm_router_attempts_total{target="flaky/tts-a",outcome="upstream_server_error"} 2'
        in metrics
    )


def _speech_lines(router: RouterProcess) -> list[dict]:
    return [
        orjson.loads(line)
        for line in router.stderr_lines()
        if b'"path":"/v1/audio/speech"' in line and b'"event":"request"' in line
    ]


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.configure(exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.configure(None)


def test_a_transcription_is_traced(tmp_path, spans):
    with FakeUpstream() as upstream:
        upstream.set_streaming("/v1/audio/transcriptions", UploadReader())
        with RouterServer(_config(tmp_path, upstream.url), ENV) as router:
            wav = _wav(tmp_path / "b.wav")
            with wav.open("rb") as audio:
                answer = httpx.post(
                    router.base_url + "/audio/transcriptions",
                    headers={"authorization": "Bearer sk-app-1234"},
                    data={"model": "whisper"},
                    files={"file": ("b.wav", audio, "audio/wav")},
                )
            assert answer.status_code == 200
            deadline = time.monotonic() + 5  # the request's span ends after its last byte
            while not any(s.name.startswith("POST") for s in spans.get_finished_spans()):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        (seen,) = upstream.received("/v1/audio/transcriptions")
    finished = {s.name: s for s in spans.get_finished_spans()}
    request, attempt = (
        finished["POST /v1/audio/transcriptions"],
        finished["transcriptions whisper-1"],
    )
    assert attempt.parent.span_id == request.context.span_id
    assert attempt.attributes["gen_ai.request.model"] == "whisper-1"
    assert request.attributes["gen_ai.request.model"] == "whisper"
    assert int(seen.headers["traceparent"].split("-")[2], 16) == attempt.context.span_id
