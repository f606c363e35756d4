"""One `llm-switchyard serve` for the tests of the Responses and Messages APIs, in front of a fake
OpenAI-compatible upstream, with the official SDKs as clients."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import orjson
import pytest

from router.testing import FakeUpstream, RouterProcess, chat_chunk, chat_completion
from router.testing.openapi import OpenAPIValidator, spec_path
from router.upstream.sse import SSEDecoder

KEY = "sk-apis-client"
CONFIG = """
server: {{watch_config: false}}
rate_limits:
  one-a-minute: {{requests_per_minute: 1}}
  budget: {{tokens_per_minute: 100000}}
  tool-budget: {{tokens_per_minute: 100000}}
providers:
  up: {{plugin: openai, base_url: "{url}/v1", api_key: sk-apis-upstream}}
  two: {{plugin: openai, base_url: "{url}/two/v1", api_key: sk-apis-two}}
  nat:
    plugin: openai
    base_url: "{url}/nat/v1"
    api_key: sk-apis-native
    native: [responses, messages]
models:
  m:
    targets: [{{provider: up, model: up-model}}]
    retries: {{attempts: 0}}
  recovering:
    targets: [{{provider: up, model: up-model}}, {{provider: two, model: two-model}}]
    retries: {{attempts: 0}}
    stream_recovery: continue
  native:
    targets: [{{provider: nat, model: nat-model}}]
    retries: {{attempts: 0}}
  mixed:
    targets: [{{provider: nat, model: nat-model}}, {{provider: up, model: up-model}}]
    retries: {{attempts: 0}}
  back:
    targets: [{{provider: up, model: up-model}}, {{provider: nat, model: nat-model}}]
    retries: {{attempts: 0}}
  once: {{targets: [{{provider: up, model: up-model}}], rate_limits: [one-a-minute]}}
  budgeted: {{targets: [{{provider: up, model: up-model}}], rate_limits: [budget]}}
  tooled: {{targets: [{{provider: up, model: up-model}}], rate_limits: [tool-budget]}}
keys:
  app: {{key: {key}}}
  narrow: {{key: sk-apis-narrow, models: [m]}}
header_rewrites:
  - {{direction: response, set: {{x-served-by: "{{provider}}/{{upstream_model}}"}}}}
"""


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="session")
def router(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("apis") / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url=upstream.url, key=KEY)))
    with RouterProcess(path) as served:
        yield served


@pytest.fixture
def fake(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The session's fake upstream, with no script and no requests left from other tests."""
    upstream.reset()
    yield upstream
    upstream.reset()


@pytest.fixture
def oai(router: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=router.base_url, api_key=KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def claude(router: Any) -> Iterator[anthropic.Anthropic]:
    """The anthropic SDK adds `/v1` to its base URL itself."""
    with anthropic.Anthropic(base_url=router.url, api_key=KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def schema_check() -> Callable[[str, Any], None]:
    """`schema_check(name, instance)`: asserts that `instance` is a valid `name` of the
    official OpenAI OpenAPI description, where it is available (OPENAI_OPENAPI_SPEC);
    without it only this check is skipped, not the test."""

    def check(schema: str, instance: Any) -> None:
        path = spec_path()
        problems = OpenAPIValidator(path).errors(schema, instance) if path else []
        assert not problems, f"not a valid {schema}:\n" + "\n".join(problems[:10])

    return check


@pytest.fixture
def sse() -> Callable[[bytes], list[tuple[str | None, dict[str, Any]]]]:
    """`sse(data)`: (event name, JSON data) of each SSE frame of `data`."""

    def parse(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
        decoder = SSEDecoder()
        frames = [*decoder.feed(data), *decoder.flush()]
        return [(e.event, orjson.loads(e.data)) for e in frames]

    return parse


class Chat:
    """Chat-completion answers as an OpenAI-compatible upstream sends them."""

    @staticmethod
    def answer(
        content: str | None = "Hi there",
        *,
        tool_calls: tuple[tuple[str, str, str], ...] = (),
        usage: tuple[int, int] = (7, 3),
        model: str = "up-model",
    ) -> dict[str, Any]:
        """`tool_calls`: (id, function name, JSON arguments) of each."""
        answer = chat_completion(content or "", model, usage)
        choice = answer["choices"][0]
        choice["message"]["content"] = content
        if tool_calls:
            choice["message"]["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                for i, n, a in tool_calls
            ]
            choice["finish_reason"] = "tool_calls"
        return answer

    @staticmethod
    def interleaved_calls() -> list[Any]:
        """The SSE frames of two tool calls (call_a: Rome, call_b: Oslo) whose argument
        fragments interleave, as a model making parallel calls may stream them."""

        def call(index: int, **part: Any) -> Any:
            return chat_chunk({"tool_calls": [{"index": index, **part}]})

        named = {"type": "function"}
        return [
            call(0, id="call_a", **named, function={"name": "get_weather", "arguments": ""}),
            call(1, id="call_b", **named, function={"name": "get_weather", "arguments": ""}),
            call(0, function={"arguments": '{"city": "Rome"}'}),
            call(1, function={"arguments": '{"city": "Oslo"}'}),
            chat_chunk({}, "tool_calls"),
            "[DONE]",
        ]

    @staticmethod
    def parts_stream() -> list[Any]:
        """The SSE frames of "Bonjour" whose deltas carry their text as lists of parts, as
        some OpenAI-compatible servers stream it (an image part in one, which is no text)."""

        def parts(*texts: str) -> list[dict[str, Any]]:
            return [{"type": "text", "text": text} for text in texts]

        image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
        return [
            chat_chunk({"role": "assistant", "content": parts("Bon")}),
            chat_chunk({"content": [*parts("j"), image, *parts("our")]}),
            chat_chunk({}, "stop"),
            "[DONE]",
        ]


@pytest.fixture
def chat() -> type[Chat]:
    return Chat
