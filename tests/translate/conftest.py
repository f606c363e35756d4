"""Fixtures for the translator tests: chat chunks and answers as upstreams send them, SSE
parsing, and the official SDKs reading our bytes through an in-process mock transport."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

import anthropic
import openai
import orjson
import pytest

from router.testing import closed_after_test
from router.testing.openapi import OpenAPIValidator, spec_path
from router.upstream.sse import SSEDecoder

# The SDKs' own HTTP client package (httpx2 in current releases, httpx before).
try:
    http: Any = importlib.import_module("httpx2")
except ImportError:  # pragma: no cover
    http = importlib.import_module("httpx")

MODEL = "up-model"
CREATED = 1_700_000_000


class Chat:
    """Chat-completion chunks and answers, shaped as OpenAI-compatible upstreams send them."""

    @staticmethod
    def chunk(
        delta: dict[str, Any] | None = None,
        finish: str | None = None,
        *,
        usage: dict[str, Any] | None = None,
        **choice: Any,
    ) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
                | choice
            ],
            **({"usage": usage} if usage else {}),
        }

    @staticmethod
    def usage(
        prompt: int = 11, completion: int = 7, *, cached: int = 0, reasoning: int = 0
    ) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }

    @classmethod
    def usage_chunk(cls, prompt: int = 11, completion: int = 7, **kw: Any) -> dict[str, Any]:
        """The final chunk of `stream_options.include_usage`: no choices."""
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [],
            "usage": cls.usage(prompt, completion, **kw),
        }

    @classmethod
    def text(cls, *pieces: str, finish: str = "stop") -> list[dict[str, Any]]:
        """A role-only first chunk, the pieces, then the finish chunk."""
        return [
            cls.chunk({"role": "assistant", "content": ""}),
            *(cls.chunk({"content": piece}) for piece in pieces),
            cls.chunk({}, finish),
        ]

    @classmethod
    def tool_call(
        cls, index: int, call_id: str, name: str, *fragments: str
    ) -> list[dict[str, Any]]:
        """A tool call as OpenAI streams it: id and name first, then argument fragments."""
        first = {"index": index, "id": call_id, "type": "function"}
        first["function"] = {"name": name, "arguments": ""}
        return [
            cls.chunk({"tool_calls": [first]}),
            *(
                cls.chunk({"tool_calls": [{"index": index, "function": {"arguments": f}}]})
                for f in fragments
            ),
        ]

    @staticmethod
    def answer(
        content: str | None = "Hello there",
        *,
        finish: str = "stop",
        tool_calls: list[dict[str, Any]] | None = None,
        usage: dict[str, Any] | None = None,
        **message: Any,
    ) -> dict[str, Any]:
        body = {"role": "assistant", "content": content, "refusal": None} | message
        if tool_calls:
            body["tool_calls"] = tool_calls
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [{"index": 0, "message": body, "logprobs": None, "finish_reason": finish}],
        }
        if usage is not None:
            answer["usage"] = usage
        return answer

    @staticmethod
    def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }


@pytest.fixture
def chat() -> type[Chat]:
    return Chat


def parse_sse(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """(event name, JSON data) of every frame, decoded the way the router decodes SSE."""
    decoder = SSEDecoder()
    events = [*decoder.feed(data), *decoder.flush()]
    return [(event.event, orjson.loads(event.data)) for event in events]


@pytest.fixture
def sse() -> Callable[[bytes], list[tuple[str | None, dict[str, Any]]]]:
    return parse_sse


Serve = Callable[..., Any]


def _transport(body: bytes, status: int, content_type: str, seen: list[Any]) -> Any:
    def handler(request: Any) -> Any:
        seen.append(request)
        return http.Response(status, headers={"content-type": content_type}, content=body)

    return http.MockTransport(handler)


@pytest.fixture
def openai_client() -> Iterable[Serve]:
    """`openai_client(body, status=200, stream=False)`: a real `openai.OpenAI` whose every
    request is answered in-process with `body` (SSE when `stream`)."""
    clients: list[Any] = []

    def make(body: bytes | dict[str, Any], status: int = 200, stream: bool = False) -> Any:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        kind = "text/event-stream" if stream else "application/json"
        transport = _transport(data, status, kind, [])
        client = closed_after_test(
            openai.OpenAI(
                api_key="test-key",
                base_url="http://router.test/v1",
                max_retries=0,
                http_client=http.Client(transport=transport),
            )
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def anthropic_client() -> Iterable[Serve]:
    """`anthropic_client(body, status=200, stream=False)`: a real `anthropic.Anthropic`
    answered in-process with `body`."""
    clients: list[Any] = []

    def make(body: bytes | dict[str, Any], status: int = 200, stream: bool = False) -> Any:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        kind = "text/event-stream" if stream else "application/json"
        transport = _transport(data, status, kind, [])
        client = closed_after_test(
            anthropic.Anthropic(
                api_key="test-key",
                base_url="http://router.test",
                max_retries=0,
                http_client=http.Client(transport=transport),
            )
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def openapi_errors(schema: str, instance: Any) -> list[str]:
    """Deviations from the official OpenAI OpenAPI description, where it is available
    (OPENAI_OPENAPI_SPEC); without it this extra check is skipped, not the test."""
    path = spec_path()
    if path is None:
        return []
    return OpenAPIValidator(path).errors(schema, instance)


@pytest.fixture
def openapi_check() -> Callable[[str, Any], None]:
    def check(schema: str, instance: Any) -> None:
        problems = openapi_errors(schema, instance)
        assert not problems, f"not a valid {schema}:\n" + "\n".join(problems[:10])

    return check
