"""A faithful fake of the Tokligence gateway, for testing router configs offline.

Every function returns a `router.testing.Reply` that reproduces what the gateway sends, byte
for byte where its source gives the bytes: Go's `json.Encoder` bodies (compact, HTML
characters escaped, a trailing newline), its SSE framing, the mid-stream `stream error` frame
and the plain-text 404 and 429. Queue them on a `FakeUpstream`:

    upstream.add(CHAT_PATH, chat_stream(["Hel", "lo"]), no_adapter("gpt-9"))

or let `TokligenceGateway` answer like a gateway with its built-in `loopback` model.
Replies marked *documented* follow the hosted product's docs where the open-source gateway's
code has no such answer (402, 503, the OpenAI envelope); their exact bodies are inferred.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from router.testing import FakeUpstream, Received, Reply, usage_block

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
IMAGES_PATH = "/v1/images/generations"
RERANK_PATH = "/v1/rerank"
MODELS_PATH = "/v1/models"

JSON_HEADERS = {"content-type": "application/json"}
SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "connection": "keep-alive",
}
TEXT_HEADERS = {"content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff"}
STREAM_ERROR_FRAME = b'data: {"error": "stream error"}\n\n'
_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def go_json(payload: Any, *, newline: bool = True) -> bytes:
    """JSON as Go's `json.Encoder` writes it: compact, `<>&` escaped, a trailing newline."""
    body = orjson.dumps(payload)
    for raw, escaped in _GO_ESCAPES:
        body = body.replace(raw, escaped)
    return body + b"\n" if newline else body


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {**JSON_HEADERS, **(headers or {})}, go_json(payload))


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> Reply:
    """Go's `http.Error`: text/plain, nosniff, the message and a newline."""
    return Reply(status, {**TEXT_HEADERS, **(headers or {})}, text.encode() + b"\n")


# -- success ------------------------------------------------------------------------------


def chat_completion(
    content: str = "[loopback] hi",
    model: str = "loopback",
    usage: tuple[int, int] = (10, 3),
    **usage_extras: int,
) -> dict[str, Any]:
    """A non-stream answer, fields in the gateway's order; extras e.g. `reasoning_tokens=2`."""
    return {
        "id": "cmpl-loopback",
        "object": "chat.completion",
        "created": 1732000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
            }
        ],
        "usage": {**usage_block(usage), **usage_extras},
    }


def chat_reply(content: str = "[loopback] hi", model: str = "loopback", **kwargs: Any) -> Reply:
    return _json(chat_completion(content, model, **kwargs))


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": 1732000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return b"data: " + go_json(chunk, newline=False) + b"\n\n"


def chat_frames(
    pieces: Iterable[str] = ("Hel", "lo"), model: str = "gpt-4o-mini", finish: str = "stop"
) -> list[bytes | str | dict[str, Any]]:
    """A stream's frames: role (no `content`: it is omitted when empty), pieces, finish, [DONE].

    No chunk ever has `usage`, whatever the client asked for.
    """
    frames: list[bytes | str | dict[str, Any]] = [_chunk(model, {"role": "assistant"})]
    frames += [_chunk(model, {"content": piece}) for piece in pieces]
    frames += [_chunk(model, {}, finish), b"data: [DONE]\n\n"]
    return frames


def chat_stream(
    pieces: Iterable[str] = ("Hel", "lo"), model: str = "gpt-4o-mini", delay: float = 0.0
) -> Reply:
    return Reply(200, dict(SSE_HEADERS), frames=chat_frames(pieces, model), delay=delay)


def tool_call_stream(
    name: str = "get_weather",
    arguments: Sequence[str] = ('{"city":', '"Paris"}'),
    model: str = "gpt-4o-mini",
) -> Reply:
    """One tool call, streamed: its `index` 0 is omitted from every delta (Go `omitempty`)."""
    first = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": ""}}
    frames: list[bytes | str | dict[str, Any]] = [
        _chunk(model, {"role": "assistant", "tool_calls": [first]})
    ]
    frames += [_chunk(model, {"tool_calls": [{"function": {"arguments": a}}]}) for a in arguments]
    frames += [_chunk(model, {}, "tool_calls"), b"data: [DONE]\n\n"]
    return Reply(200, dict(SSE_HEADERS), frames=frames)


def stream_error(
    pieces: Iterable[str] = ("Hel",),
    model: str = "gpt-4o-mini",
    role: bool = True,
    delay: float = 0.0,
) -> Reply:
    """The provider behind the gateway fails mid-answer: an error frame, then EOF, no [DONE].

    `role=False` and no pieces: it fails before its first chunk.
    """
    frames: list[bytes | str | dict[str, Any]] = []
    if role:
        frames.append(_chunk(model, {"role": "assistant"}))
    frames += [_chunk(model, {"content": piece}) for piece in pieces]
    frames.append(STREAM_ERROR_FRAME)
    return Reply(200, dict(SSE_HEADERS), frames=frames, delay=delay)


def embeddings_reply(
    vectors: Sequence[Sequence[float]], model: str = "emb", tokens: int = 4
) -> Reply:
    data = [
        {"object": "embedding", "embedding": list(v), "index": i} for i, v in enumerate(vectors)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _json({"object": "list", "data": data, "model": model, "usage": usage})


PNG_B64 = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mPw7/v+HwAF2ALUS3IXJwAAAABJRU5E"
    "rkJggg=="
)


def image_reply(n: int = 1, *, b64: bool = True, created: int = 1732000000) -> Reply:
    """*Documented* ("Generate images using DALL-E or other providers"): OpenAI's shape, as
    the gateway would re-encode it (body inferred)."""
    item = {"b64_json": PNG_B64} if b64 else {"url": "https://images.example/tok.png"}
    return _json({"created": created, "data": [dict(item) for _ in range(n)]})


def rerank_reply(
    scores: Sequence[float],
    model: str = "rerank-v1",
    documents: Sequence[str] | None = None,
    top_n: int | None = None,
) -> Reply:
    """*Documented* ("Rerank documents based on relevance"); the shape Jina and Cohere
    share, results by relevance with the document when asked (body inferred)."""
    ranked = sorted(enumerate(scores), key=lambda item: -item[1])[:top_n]
    results: list[dict[str, Any]] = []
    for index, score in ranked:
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if documents is not None:
            result["document"] = {"text": documents[index]}
        results.append(result)
    usage = {"total_tokens": sum(len(d.split()) for d in documents or ()) + 4}
    return _json({"model": model, "results": results, "usage": usage})


def models_reply(ids: Iterable[str] = ("loopback",), owned_by: str = "tokligence") -> Reply:
    data = [{"id": i, "object": "model", "created": 1732000000, "owned_by": owned_by} for i in ids]
    return _json({"object": "list", "data": data})


# -- errors (the open-source gateway: flat `{"error": "<string>"}`) -------------------------


def flat_error(status: int, message: str) -> Reply:
    return _json({"error": message}, status)


def missing_api_key() -> Reply:
    return flat_error(401, "missing api key")


def invalid_token() -> Reply:
    """A key without the `tok_` prefix, as the open-source gateway answers it."""
    return flat_error(401, "invalid token")


def invalid_api_key() -> Reply:
    """An unknown or expired key, or an inactive user."""
    return flat_error(401, "invalid api key")


def bad_json(detail: str = "unexpected end of JSON input") -> Reply:
    return flat_error(400, detail)


def firewall_block(message: str = "request blocked by firewall: pii detected") -> Reply:
    """The input/output firewall said no (the message itself depends on its rules)."""
    return flat_error(403, message)


def no_adapter(model: str = "xyz") -> Reply:
    return flat_error(502, f'router: no adapter found for model "{model}"')


def model_required() -> Reply:
    return flat_error(502, "router: model name required")


def streaming_unsupported() -> Reply:
    return flat_error(502, "router: selected adapter does not support streaming")


def upstream_error(message: str, type: str, code: str | None, adapter: str = "openai") -> Reply:
    """A provider error behind the gateway, passed on as a 502 with its type and code."""
    return flat_error(502, f"{adapter}: {message} (type={type}, code={code or ''})")


def upstream_http_error(status: int, body: str, adapter: str = "openai") -> Reply:
    """A provider's non-JSON-typed failure behind the gateway: its status and raw body."""
    return flat_error(502, f"{adapter}: http {status}: {body}")


def embeddings_unsupported() -> Reply:
    return flat_error(501, "embeddings not supported by current adapter")


def rate_limited(
    limit: int = 60, reset: int | None = None, limit_type: str = "api_key", remaining: int = 0
) -> Reply:
    """The rate-limit middleware's 429: plain text; `reset` (unix seconds) defaults to now+1."""
    reset = int(time.time()) + 1 if reset is None else reset
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Type": limit_type,
        "X-RateLimit-Reset": str(reset),
    }
    return _text(429, "Rate limit exceeded. Please try again later.", headers)


def page_not_found() -> Reply:
    """chi's default for an unknown path (e.g. a `base_url` without `/v1`)."""
    return _text(404, "404 page not found")


def method_not_allowed() -> Reply:
    return Reply(405, {}, b"")


# -- errors the hosted product documents (OpenAI envelope; exact bodies inferred) -------------


def envelope_error(status: int, message: str, type: str, code: str | None = None) -> Reply:
    return _json({"error": {"message": message, "type": type, "param": None, "code": code}}, status)


def insufficient_balance() -> Reply:
    """Documented: 402 when the account balance is too low for the request."""
    return envelope_error(
        402,
        "Account balance is too low for this request",
        "insufficient_balance",
        "insufficient_balance",
    )


def service_unavailable(message: str = "server shutting down") -> Reply:
    """Documented: 503 for an upstream provider error or a gateway shutting down."""
    return envelope_error(503, message, "server_error", "service_unavailable")


# -- a whole gateway ----------------------------------------------------------------------


@dataclass
class TokligenceGateway:
    """The gateway's request handling in miniature, for `FakeUpstream.set_default`.

    `keys=None` is a gateway with `auth_disabled`. Models in `models` answer like the built-in
    `loopback` adapter: an echo, and a 502 for `stream: true`; other models have no adapter.
    `images` and `rerank` turn on the optional endpoints the hosted product documents; off,
    as in the open-source gateway, their paths answer chi's 404.
    """

    keys: frozenset[str] | None = None
    models: tuple[str, ...] = ("loopback",)
    images: bool = False
    rerank: bool = False

    def install(self, upstream: FakeUpstream) -> FakeUpstream:
        upstream.set_default(CHAT_PATH, self.chat)
        upstream.set_default(EMBEDDINGS_PATH, self.embeddings)
        upstream.set_default(MODELS_PATH, lambda _: models_reply(self.models))
        upstream.set_default(IMAGES_PATH, self.image if self.images else page_not_found())
        upstream.set_default(RERANK_PATH, self.ranked if self.rerank else page_not_found())
        return upstream

    def _refuse(self, received: Received) -> Reply | None:
        if self.keys is None:
            return None
        auth = received.headers.get("authorization", "")
        key = auth[7:] if auth[:7].lower() == "bearer " else received.headers.get("x-api-key", "")
        if not key:
            return missing_api_key()
        if not key.startswith("tok_"):
            return invalid_token()
        return None if key in self.keys else invalid_api_key()

    def _body(self, received: Received) -> dict[str, Any] | Reply:
        if not received.body:
            return bad_json()
        try:
            body = orjson.loads(received.body)
        except orjson.JSONDecodeError:
            char = received.body[:1].decode("utf-8", "replace")
            return bad_json(f"invalid character '{char}' looking for beginning of value")
        if not isinstance(body, dict):
            return bad_json("json: cannot unmarshal array into Go value of type openai.Request")
        model = body.get("model") or ""
        if not model:
            return model_required()
        if model not in self.models:
            return no_adapter(model)
        return body

    def chat(self, received: Received) -> Reply:
        refused = self._refuse(received)
        body = refused or self._body(received)
        if isinstance(body, Reply):
            return body
        if body.get("stream"):
            return streaming_unsupported()
        messages = body.get("messages") or []
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        last = users[-1].get("content") if users else ""
        reply = "[loopback] " + (last if isinstance(last, str) else "")
        usage = (10 * len(messages), len(reply) // 4)
        return chat_reply(reply, body["model"], usage=usage)

    def embeddings(self, received: Received) -> Reply:
        refused = self._refuse(received)
        body = refused or self._body(received)
        return body if isinstance(body, Reply) else embeddings_unsupported()

    def image(self, received: Received) -> Reply:
        refused = self._refuse(received)
        body = refused or self._body(received)
        if isinstance(body, Reply):
            return body
        return image_reply(int(body.get("n") or 1), b64=body.get("response_format") == "b64_json")

    def ranked(self, received: Received) -> Reply:
        refused = self._refuse(received)
        body = refused or self._body(received)
        if isinstance(body, Reply):
            return body
        documents = [str(d) for d in body.get("documents") or []]
        query = set(str(body.get("query", "")).lower().split())
        scores = [len(query & set(d.lower().split())) / (len(query) or 1) for d in documents]
        returned = documents if body.get("return_documents") else None
        return rerank_reply(scores, body["model"], returned, body.get("top_n"))
