"""A fake Telnyx Inference upstream for offline tests, built on `router.testing.FakeUpstream`.

Replies reproduce the wire facts we know: paths under `/v2/ai`, error bodies byte for byte
(Telnyx v2 `errors`, FastAPI 422 in pydantic v1 and v2 styles, plain `detail`),
`x-ratelimit-*` headers, vLLM-style SSE chunks with `reasoning_content` and `[DONE]`, and a
mid-stream `data: {"error": ...}` frame (undocumented by Telnyx; the vLLM shape).

    upstream = FakeUpstream().start()
    install(upstream, api_key="KEY-test")            # a working fake that checks auth
    upstream.add(CHAT_PATH, rate_limited(reset=3))   # or script single replies
    # providers.telnyx.base_url: f"{upstream.url}{API_ROOT}"
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from router.testing import (
    FakeUpstream,
    Received,
    Reply,
    chat_chunk,
    json_reply,
    sse_reply,
    usage_block,
)

API_ROOT = "/v2/ai"
CHAT_PATH = "/v2/ai/openai/chat/completions"
DEPRECATED_CHAT_PATH = "/v2/ai/chat/completions"
MODELS_PATH = "/v2/ai/openai/models"
EMBEDDINGS_PATH = "/v2/ai/openai/embeddings"
DEFAULT_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct"

AUTH_FAILED_DETAIL = (
    "The required authentication headers were either invalid or not included in the request."
)
AUTH_FAILED_BODY = (
    b'{"errors":[{"code":"10009","title":"Authentication failed","detail":"The required '
    b'authentication headers were either invalid or not included in the request.","meta":'
    b'{"url":"https://developers.telnyx.com/docs/overview/errors/10009"}}]}'
)
UNAUTHORIZED_BODY = (
    b'{"errors":[{"code":"10007","title":"Unauthorized","detail":"Missing authentication"}]}'
)
RATE_LIMITED_BODY = (
    b'{"errors":[{"code":"10011","title":"Too many requests","detail":"You have exceeded the '
    b'maximum number of allowed requests."}]}'
)
UNEXPECTED_ERROR_BODY = (
    b'{"errors":[{"code":"10007","title":"Unexpected error","detail":"An unexpected error '
    b'occured.","meta":{"url":"https://developers.telnyx.com/docs/overview/errors/10007"}}]}'
)


def _error(status: int, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(body, status=status, headers=headers)


# -- errors -----------------------------------------------------------------------------------


def auth_failed(detail: str = AUTH_FAILED_DETAIL, pointer: bool = False) -> Reply:
    """401 code 10009. Other details seen: "Could not understand the provided credentials.",
    "The API key looks malformed. Check that you copied it correctly."."""
    if detail == AUTH_FAILED_DETAIL and not pointer:
        return _error(401, AUTH_FAILED_BODY)
    entry: dict[str, Any] = {"code": "10009", "title": "Authentication failed", "detail": detail}
    if pointer:
        entry["source"] = {"pointer": "/"}
    entry["meta"] = {"url": "https://developers.telnyx.com/docs/overview/errors/10009"}
    return _error(401, orjson.dumps({"errors": [entry]}))


def unauthorized() -> Reply:
    """401 code 10007, as some Telnyx gateways answer a missing key."""
    return _error(401, UNAUTHORIZED_BODY)


def rate_limited(limit: int = 100, reset: int = 1) -> Reply:
    """429 code 10011 with Telnyx's rate-limit headers (`reset` in seconds)."""
    return _error(429, RATE_LIMITED_BODY, rate_limit_headers(limit, 0, reset))


def unexpected_error() -> Reply:
    """500 code 10007 "Unexpected error" (spelling "occured" as in Telnyx's spec)."""
    return _error(500, UNEXPECTED_ERROR_BODY)


def service_unavailable(code: str | None = None) -> Reply:
    """503 "Service unavailable". Telnyx's spec gives no code for it: pass one to include it."""
    entry = {"code": code} if code is not None else {}
    entry |= {"title": "Service unavailable", "detail": "Service unavailable"}
    return _error(503, orjson.dumps({"errors": [entry]}))


def detail_error(status: int, detail: str) -> Reply:
    """Plain FastAPI `{"detail": "..."}`, e.g. 404 `Not Found` or a 400 about the model."""
    return _error(status, orjson.dumps({"detail": detail}))


def validation_error(
    field: str | list[str | int] = "messages",
    style: str = "v2",
    echo: dict[str, Any] | None = None,
) -> Reply:
    """422 FastAPI validation error for a missing field, pydantic `v1` or `v2` style.

    v2 echoes the request as `input`, as FastAPI does: pass the request body as `echo`.
    """
    loc: list[str | int] = ["body", *([field] if isinstance(field, str) else field)]
    item: dict[str, Any]
    if style == "v1":
        item = {"loc": loc, "msg": "field required", "type": "value_error.missing"}
    elif style == "v2":
        item = {"type": "missing", "loc": loc, "msg": "Field required", "input": echo or {}}
    else:
        raise ValueError(f"style must be 'v1' or 'v2', not {style!r}")
    return _error(422, orjson.dumps({"detail": [item]}))


def json_error() -> Reply:
    """422 for a body that is not JSON (FastAPI with pydantic v2)."""
    item = {
        "type": "json_invalid",
        "loc": ["body", 0],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": "Expecting value"},
    }
    return _error(422, orjson.dumps({"detail": [item]}))


def rate_limit_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(reset),
    }


# -- successes --------------------------------------------------------------------------------


def completion(
    content: str = "Hello!",
    model: str = DEFAULT_MODEL,
    usage: tuple[int, int] = (12, 3),
    reasoning: str | None = None,
) -> dict[str, Any]:
    """A vLLM-style `chat.completion` object, as Telnyx returns it."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": []}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return {
        "id": "chatcmpl-7f2c1b8e4a0d4c9e",
        "object": "chat.completion",
        "created": 1763700000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage_block(usage),
    }


def completion_reply(content: str = "Hello!", **kwargs: Any) -> Reply:
    return json_reply(completion(content, **kwargs), headers=rate_limit_headers(100, 99, 60))


def stream_frames(
    pieces: Iterable[str] = ("Hel", "lo", "!"),
    model: str = DEFAULT_MODEL,
    reasoning: Iterable[str] = (),
    finish: str = "stop",
    done: bool = True,
) -> list[bytes | str | dict[str, Any]]:
    """vLLM-style chunks: role, `reasoning_content` pieces, content pieces, finish, [DONE]."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return chat_chunk(
            delta,
            finish_reason,
            model=model,
            chunk_id="chatcmpl-7f2c1b8e4a0d4c9e",
            created=1763700000,
        )

    frames: list[bytes | str | dict[str, Any]] = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"reasoning_content": piece}) for piece in reasoning]
    frames += [chunk({"content": piece}) for piece in pieces]
    frames.append(chunk({}, finish))
    if done:
        frames.append("[DONE]")
    return frames


def stream_reply(
    pieces: Iterable[str] = ("Hel", "lo", "!"), *, delay: float = 0.0, **kwargs: Any
) -> Reply:
    return sse_reply(stream_frames(pieces, **kwargs), delay=delay)


def stream_error_reply(
    pieces: Iterable[str] = ("Hel",),
    error: dict[str, Any] | None = None,
    *,
    delay: float = 0.05,
) -> Reply:
    """Some content, then an error frame and no `[DONE]`. Paced by `delay` so the content
    reaches the client before the failure does."""
    frames = stream_frames(pieces, done=False)[:-1]  # no finish chunk either
    frames.append(
        error
        or {
            "error": {
                "object": "error",
                "message": "The engine died while generating.",
                "type": "InternalServerError",
                "param": None,
                "code": 500,
            }
        }
    )
    return sse_reply(frames, delay=delay)


def models_payload(schema: str = "2026") -> dict[str, Any]:
    """`GET /v2/ai/openai/models`: the 2026 schema (ISO `created`, rich metadata) or 2025."""
    if schema == "2025":
        return {
            "object": "list",
            "data": [
                {"id": DEFAULT_MODEL, "object": "model", "created": 1721001600, "owned_by": "meta"}
            ],
        }
    return {
        "object": "list",
        "data": [
            {
                "id": "moonshotai/Kimi-K2.6",
                "object": "model",
                "created": "2026-05-01T00:00:00Z",
                "owned_by": "Telnyx",
                "organization": "moonshotai",
                "task": "text-generation",
                "context_length": 262144,
                "max_completion_tokens": None,
                "languages": ["en"],
                "parameters": 1000000000000,
                "parameters_str": "1.0T",
                "tier": "large",
                "license": "MIT",
                "is_vision_supported": False,
                "is_fine_tunable": False,
                "recommended_for_assistants": False,
                "regions": ["us-central-1", "us-east-1"],
                "pricing": {
                    "prompt": "0.300000",
                    "cached_prompt": "0.060000",
                    "completion": "1.200000",
                    "currency": "USD",
                    "unit": "1M_tokens",
                },
            }
        ],
    }


def embeddings(count: int = 1, dimensions: int = 4, model: str = "thenlper/gte-large") -> dict:
    """An OpenAI `list` of embeddings."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.125 * (i + 1)] * dimensions}
            for i in range(count)
        ],
        "model": model,
        "usage": {"prompt_tokens": 3 * count, "total_tokens": 3 * count},
    }


# -- a working fake -----------------------------------------------------------------------------


def install(upstream: FakeUpstream, api_key: str = "KEY-test", answer: str = "Hello!") -> None:
    """Make `upstream` answer like Telnyx on every path: 401 without the right bearer key,
    422 without `messages`, then a completion or a stream. Scripted replies (`add`) still
    come first."""

    def checked(received: Received, required: str) -> dict[str, Any] | Reply:
        """The request body, or the reply Telnyx gives to a bad key, bad JSON or no field."""
        if received.headers.get("authorization") != f"Bearer {api_key}":
            return auth_failed()
        try:
            body = received.json()
        except orjson.JSONDecodeError:
            return json_error()
        if not isinstance(body, dict) or required not in body:
            return validation_error(required, echo=body if isinstance(body, dict) else {})
        return body

    def chat(received: Received) -> Reply:
        body = checked(received, "messages")
        if isinstance(body, Reply):
            return body
        model = body.get("model") or DEFAULT_MODEL
        if body.get("stream"):
            return stream_reply(re.findall(r"\S+\s*", answer) or [""], model=model)
        return completion_reply(answer, model=model)

    def models(received: Received) -> Reply:
        if received.headers.get("authorization") != f"Bearer {api_key}":
            return auth_failed()
        return json_reply(models_payload())

    def embed(received: Received) -> Reply:
        body = checked(received, "input")
        if isinstance(body, Reply):
            return body
        inputs = body["input"]
        count = len(inputs) if isinstance(inputs, list) else 1
        return json_reply(embeddings(count, model=body.get("model", "thenlper/gte-large")))

    upstream.set_default(CHAT_PATH, chat)
    upstream.set_default(DEPRECATED_CHAT_PATH, chat)
    upstream.set_default(MODELS_PATH, models)
    upstream.set_default(EMBEDDINGS_PATH, embed)
