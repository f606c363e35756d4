"""A faithful fake of Telkom AI behind the Apilogy (Kong) gateway, for offline tests.

Every function returns a `router.testing.Reply` to queue on a `FakeUpstream` path, with the
status, headers and exact body bytes the real gateway or model server sends:

    from router.testing import FakeUpstream
    from llm_router_telkom import testing as telkom

    upstream.add(telkom.CHAT_PATH, telkom.completion("Halo!"))
    upstream.add(telkom.CHAT_PATH, telkom.rate_limited(retry_after=12))
    upstream.set_default(telkom.CHAT_PATH, telkom.gateway("my-key", telkom.completion()))

Point the provider's `base_url` at `upstream.url + BASE_PATH`. Kong's own errors come in the
Kong 3.x form by default (pretty-printed, with `request_id`); pass `kong=2` for the older one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from llm_router_telkom import kong as _kong
from router.testing import Received, Reply, chat_chunks, sse_reply, usage_block

BASE_PATH = "/Telkom-LLM/0.0.4"
CHAT_PATH = BASE_PATH + "/llm/chat/completions"  # what real clients call
DOCUMENTED_CHAT_PATH = BASE_PATH + "/chat/completions"  # what the docs say
MODELS = ("telkom-ai-instruct", "telkom-ai", "telkom-ai-reasoning")
QUOTA_PER_MINUTE = 7  # the published throughput
KONG_VERSION = "3.10.0"

__all__ = [
    "BASE_PATH",
    "CHAT_PATH",
    "DOCUMENTED_CHAT_PATH",
    "MODELS",
    "QUOTA_PER_MINUTE",
    "backend_detail",
    "backend_error",
    "chunks",
    "completion",
    "completion_body",
    "content_refused",
    "duplicate_api_key",
    "gateway",
    "invalid_credentials",
    "kong_body",
    "kong_error",
    "mid_stream_error",
    "no_api_key",
    "no_route",
    "rate_limit_headers",
    "rate_limited",
    "stream",
    "unexpected_error",
]


# -- Kong's own answers ---------------------------------------------------------------------


def kong_body(message: str, *, kong: int = 3, request_id: str | None = None) -> bytes:
    """Kong's error body, byte for byte: pretty-printed, `request_id` from Kong 3.x on."""
    if kong >= 3:
        rid = request_id or os.urandom(16).hex()
        return f'{{\n  "message":"{message}",\n  "request_id":"{rid}"\n}}'.encode()
    return f'{{\n  "message":"{message}"\n}}'.encode()


def kong_error(
    status: int, message: str, *, kong: int = 3, headers: dict[str, str] | None = None
) -> Reply:
    """A response Kong generates itself (the model never saw the request)."""
    rid = os.urandom(16).hex()
    base = {"Content-Type": "application/json; charset=utf-8"}
    if kong >= 3:
        base |= {
            "X-Kong-Request-Id": rid,
            "X-Kong-Response-Latency": "0",
            "Server": f"kong/{KONG_VERSION}",
        }
    else:
        base |= {"X-Kong-Response-Latency": "0", "Server": "kong/2.8.5"}
    return Reply(status, {**base, **(headers or {})}, kong_body(message, kong=kong, request_id=rid))


def no_api_key(*, kong: int = 3) -> Reply:
    """401 from key-auth: the request had no `x-api-key`."""
    return kong_error(
        401, _kong.NO_API_KEY, kong=kong, headers={"WWW-Authenticate": 'Key realm="kong"'}
    )


def invalid_credentials(*, kong: int = 3) -> Reply:
    """Unknown key: 401 since Kong 1.0; `kong=0` gives Kong 0.x's 403 (Kong 2.x body form)."""
    if kong == 0:
        return kong_error(403, _kong.INVALID_CREDENTIALS, kong=2)
    return kong_error(401, _kong.INVALID_CREDENTIALS, kong=kong)


def duplicate_api_key(*, kong: int = 3) -> Reply:
    """401 from key-auth: the key header arrived more than once."""
    return kong_error(401, _kong.DUPLICATE_API_KEY, kong=kong)


def rate_limit_headers(
    remaining: int, *, limit: int = QUOTA_PER_MINUTE, reset: int = 60
) -> dict[str, str]:
    """The rate-limiting plugin's headers, on successes and on its 429 alike."""
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
        "X-RateLimit-Limit-Minute": str(limit),
        "X-RateLimit-Remaining-Minute": str(remaining),
    }


def rate_limited(*, retry_after: int = 60, kong: int = 3) -> Reply:
    """429 from the rate-limiting plugin: the per-minute quota is spent."""
    headers = {"Retry-After": str(retry_after), **rate_limit_headers(0, reset=retry_after)}
    return kong_error(429, _kong.RATE_LIMITED, kong=kong, headers=headers)


def no_route(*, kong: int = 3) -> Reply:
    """404: no Kong route for the path (e.g. the chat path without, or with, `/llm`)."""
    return kong_error(404, _kong.NO_ROUTE, kong=kong)


def unexpected_error(*, kong: int = 3) -> Reply:
    """500: Kong itself failed."""
    return kong_error(500, _kong.UNEXPECTED, kong=kong)


# -- the model server behind Kong -----------------------------------------------------------


def _proxied_headers(remaining: int, content_type: str) -> dict[str, str]:
    """Headers of an answer Kong proxied from the model server."""
    return {
        "Content-Type": content_type,
        **rate_limit_headers(remaining),
        "X-Kong-Upstream-Latency": "2100",
        "X-Kong-Proxy-Latency": "1",
        "Via": f"kong/{KONG_VERSION}",
    }


def backend_error(
    status: int,
    message: str,
    *,
    type: str = "BadRequestError",
    param: str | None = None,
    code: int | str | None = None,
    remaining: int = QUOTA_PER_MINUTE - 1,
) -> Reply:
    """An OpenAI-style `{"error": {...}}` from the (OpenAI-compatible) model server."""
    error = {"message": message, "type": type, "param": param, "code": code}
    body = orjson.dumps({"error": error})
    return Reply(status, _proxied_headers(remaining, "application/json"), body)


def backend_detail(status: int, detail: Any, *, remaining: int = QUOTA_PER_MINUTE - 1) -> Reply:
    """A FastAPI-style `{"detail": ...}` from the model server (a string, or 422's list)."""
    body = orjson.dumps({"detail": detail})
    return Reply(status, _proxied_headers(remaining, "application/json"), body)


def content_refused(*, remaining: int = QUOTA_PER_MINUTE - 1) -> Reply:
    """The model server's content filter: a 400 that speaks of its content safety policy."""
    return backend_error(
        400,
        "Your request was rejected because it violates our content safety policy.",
        type="BadRequestError",
        code=400,
        remaining=remaining,
    )


def completion_body(
    content: str = "Halo! Ada yang bisa saya bantu?",
    model: str = "telkom-ai-instruct",
    usage: tuple[int, int] = (12, 9),
) -> dict[str, Any]:
    """A `chat.completion` as the model server returns it."""
    return {
        "id": "chatcmpl-7f0c2a1b9d8e4f6a",
        "object": "chat.completion",
        "created": 1732000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage_block(usage),
    }


def completion(
    content: str = "Halo! Ada yang bisa saya bantu?",
    model: str = "telkom-ai-instruct",
    *,
    usage: tuple[int, int] = (12, 9),
    remaining: int = QUOTA_PER_MINUTE - 1,
) -> Reply:
    """A successful non-streaming answer, with the gateway's rate-limit headers."""
    body = orjson.dumps(completion_body(content, model, usage))
    return Reply(200, _proxied_headers(remaining, "application/json"), body)


def chunks(
    pieces: Iterable[str] = ("Ha", "lo", "!"), model: str = "telkom-ai-instruct"
) -> list[bytes | str | dict[str, Any]]:
    """OpenAI SSE chunks without usage (never seen in a Telkom stream), then `[DONE]`."""
    return chat_chunks(pieces, model, usage=None, chunk_id="chatcmpl-7f0c2a1b9d8e4f6a")


def stream(
    pieces: Iterable[str] = ("Ha", "lo", "!"),
    model: str = "telkom-ai-instruct",
    *,
    remaining: int = QUOTA_PER_MINUTE - 1,
    delay: float = 0.0,
) -> Reply:
    """A successful streamed answer (`text/event-stream`, Kong passes SSE through)."""
    reply = sse_reply(chunks(pieces, model), delay=delay)
    reply.headers = _proxied_headers(remaining, "text/event-stream")
    return reply


def mid_stream_error(
    pieces: Iterable[str] = ("Ha",),
    message: str = "The model server failed while generating",
    *,
    model: str = "telkom-ai-instruct",
    code: int = 500,
    delay: float = 0.0,
) -> Reply:
    """A stream that starts, then carries the OpenAI-compatible server's error frame
    (`data: {"error": {...}}`) and ends without `[DONE]`. Give `delay` so the client
    has the first chunks before the error frame arrives.
    """
    frames = chunks(pieces, model)[:-2]  # role and content chunks, no finish, no [DONE]
    error = {"message": message, "type": "InternalServerError", "param": None, "code": code}
    frames.append({"error": error})
    reply = sse_reply(frames, delay=delay)
    reply.headers = _proxied_headers(QUOTA_PER_MINUTE - 1, "text/event-stream")
    return reply


# -- a gateway that checks the key ----------------------------------------------------------


def gateway(
    api_key: str, answer: Reply | Callable[[Received], Reply], *, kong: int = 3
) -> Callable[[Received], Reply]:
    """A handler doing Kong key-auth first: no `x-api-key` gets 401 "No API key found in
    request", a wrong one 401 "Invalid authentication credentials"; the right one gets
    `answer`. Use it as a path's default to test that the router sends the right key.
    """

    def handle(received: Received) -> Reply:
        given = received.headers.get("x-api-key")
        if not given:
            return no_api_key(kong=kong)
        if given != api_key:
            return invalid_credentials(kong=kong)
        return answer(received) if callable(answer) else answer

    return handle
