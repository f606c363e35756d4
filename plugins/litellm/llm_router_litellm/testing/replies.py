"""A LiteLLM proxy's successful answers and their headers, as LiteLLM 1.106.2 sends them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from router.testing import Reply

MODEL = "openai/gpt-4o-mini"
CREATED = 1795301732
VERSION = "1.106.2"


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"content-type": "application/json", **(headers or {})}, _dump(payload))


def _dump(payload: Any) -> bytes:
    return orjson.dumps(payload)


def proxy_headers(model: str = MODEL, *, stream: bool = False) -> dict[str, str]:
    """The headers LiteLLM adds to a success: its own, the upstream's limits, and echoes."""
    headers = {
        "x-litellm-call-id": "54fc075c-fc03-4fb4-863e-9c0f8d3ab304",
        "x-litellm-model-id": "897f6cf3d5f1c0b8a1e0d7c1c8c54f0e3bb3e3a1f09c2f6d0e0c9a4b5d6e7f80",
        "x-litellm-model-name": model,
        "x-litellm-model-api-base": "http://127.0.0.1:9100/v1",
        "x-litellm-version": VERSION,
        "x-litellm-key-spend": "1.8e-06",
        "x-litellm-response-duration-ms": "1339.0",
        "x-litellm-overhead-duration-ms": "276.2",
        "x-litellm-callback-duration-ms": "0.0",
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": "199990",
        "llm_provider-x-ratelimit-limit-requests": "500",
        "llm_provider-x-ratelimit-remaining-requests": "499",
        "llm_provider-x-ratelimit-reset-requests": "120ms",
        "llm_provider-x-request-id": "req_fake123",
        "request-id": "req_fake123",
        "x-litellm-model-group": model,
        "x-litellm-attempted-retries": "0",
        "x-litellm-attempted-fallbacks": "0",
        "vary": "Origin",
        "x-frame-options": "DENY",
        "content-security-policy": "frame-ancestors 'none'",
        "x-content-type-options": "nosniff",
    }
    if stream:
        headers.update(
            {
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "x-accel-buffering": "no",
                "x-ratelimit-reset-requests": "120ms",
                "x-ratelimit-reset-tokens": "3ms",
            }
        )
    else:
        headers.update({"content-type": "application/json", "x-litellm-response-cost": "1.8e-06"})
    return headers


# -- successes ---------------------------------------------------------------------------------


def chat_response(
    content: str = "Hello", model: str = MODEL, usage: tuple[int, int] = (8, 1)
) -> Reply:
    """A non-streamed chat answer: LiteLLM's key order, no `logprobs`, and
    `provider_specific_fields` on the choice and the message."""
    body = {
        "id": "chatcmpl-up1",
        "created": 1732000000,
        "model": model,
        "object": "chat.completion",
        "system_fingerprint": "fp_abc",
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "message": {
                    "content": content,
                    "role": "assistant",
                    "provider_specific_fields": {"refusal": None},
                },
                "provider_specific_fields": {},
            }
        ],
        "usage": {
            "completion_tokens": usage[1],
            "prompt_tokens": usage[0],
            "total_tokens": sum(usage),
        },
    }
    return Reply(200, proxy_headers(model), _dump(body))


def _chunk(model: str, choice: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-up1",
        "created": CREATED,
        "model": model,
        "object": "chat.completion.chunk",
        "system_fingerprint": "fp_abc",
        "choices": [choice],
        **extra,
        "service_tier": "default",
    }


def chat_frames(
    pieces: Iterable[str] = ("Hello",), model: str = MODEL, usage: tuple[int, int] | None = (8, 1)
) -> list[bytes | str | dict[str, Any]]:
    """Content chunks without `finish_reason`, the finish chunk, and the usage chunk whose
    `choices` is `[{"index":0,"delta":{}}]` (present when the client asked for usage)."""
    frames: list[bytes | str | dict[str, Any]] = [
        _chunk(model, {"index": 0, "delta": {"content": "", "role": "assistant"}})
    ]
    frames += [_chunk(model, {"index": 0, "delta": {"content": p}}) for p in pieces]
    frames.append(_chunk(model, {"finish_reason": "stop", "index": 0, "delta": {}}))
    if usage is not None:
        frames.append(
            _chunk(
                model,
                {"index": 0, "delta": {}},
                usage={
                    "completion_tokens": usage[1],
                    "prompt_tokens": usage[0],
                    "total_tokens": sum(usage),
                    "completion_tokens_details": {"reasoning_tokens": 0, "text_tokens": usage[1]},
                    "cost": 1.8e-6,
                },
            )
        )
    return frames


def chat_stream(
    pieces: Iterable[str] = ("Hello",),
    model: str = MODEL,
    usage: tuple[int, int] | None = (8, 1),
    delay: float = 0.0,
) -> Reply:
    """A streamed chat answer, ending with `data: [DONE]`."""
    frames = [*chat_frames(pieces, model, usage), "[DONE]"]
    return Reply(200, proxy_headers(model, stream=True), frames=frames, delay=delay)


def stream_error_frame(
    message: str = "litellm.APIConnectionError: APIConnectionError: OpenAIException - "
    "upstream exploded mid-stream",
    code: str = "500",
) -> bytes:
    """The frame LiteLLM sends when the upstream fails after the first chunk (`json.dumps`
    spacing, unlike the chunks)."""
    payload = {"error": {"message": message, "type": None, "param": None, "code": code}}
    return f"data: {json.dumps(payload)}\n\n".encode()


def chat_stream_failing(
    pieces: Iterable[str] = ("Hel",),
    model: str = MODEL,
    *,
    done: bool = False,
    delay: float = 0.0,
    **error: Any,
) -> Reply:
    """A stream that breaks mid-answer: 200, some chunks, the error frame, and `[DONE]` only
    with `done=True` (the newer `sse_error_payload` path; 1.106.2 just ends the body).
    `delay` spaces the frames, as on the wire, so the chunks arrive before the failure."""
    frames: list[bytes | str | dict[str, Any]] = [
        _chunk(model, {"index": 0, "delta": {"content": "", "role": "assistant"}})
    ]
    frames += [_chunk(model, {"index": 0, "delta": {"content": p}}) for p in pieces]
    frames.append(stream_error_frame(**error))
    if done:
        frames.append("[DONE]")
    return Reply(200, proxy_headers(model, stream=True), frames=frames, delay=delay)


def completion_response(text: str = "Hello", model: str = MODEL) -> Reply:
    """A legacy `text_completion` answer (shape inferred: LiteLLM passes OpenAI's through)."""
    body = {
        "id": "cmpl-up1",
        "created": 1732000000,
        "model": model,
        "object": "text_completion",
        "choices": [{"finish_reason": "stop", "index": 0, "text": text, "logprobs": None}],
        "usage": {"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3},
    }
    return Reply(200, proxy_headers(model), _dump(body))


def embedding_response(
    vectors: Sequence[Sequence[float]] = ((0.1, 0.2, 0.3),),
    model: str = "openai/text-embedding-3-small",
) -> Reply:
    """An embeddings answer (key order inferred from LiteLLM's `EmbeddingResponse`)."""
    body = {
        "model": model,
        "data": [
            {"embedding": list(v), "index": i, "object": "embedding"} for i, v in enumerate(vectors)
        ],
        "object": "list",
        "usage": {"completion_tokens": 0, "prompt_tokens": 2, "total_tokens": 2},
    }
    return Reply(200, proxy_headers(model), _dump(body))


def models_response(ids: Iterable[str] = (MODEL,)) -> Reply:
    """`GET /v1/models`: constant `created`, `owned_by` from the id's provider prefix."""
    data = [
        {
            "id": i,
            "object": "model",
            "created": 1677610602,
            "owned_by": i.split("/")[0] if "/" in i else "openai",
        }
        for i in ids
    ]
    return json_reply({"data": data, "object": "list"})


# -- the other operations KoboiLLM documents (shapes inferred from LiteLLM's response types) ---

PNG_B64 = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mPw7/v+HwAF2ALUS3IXJwAAAABJRU5E"
    "rkJggg=="
)


def image_response(n: int = 1, model: str = "openai/dall-e-3", *, b64: bool = True) -> Reply:
    """LiteLLM's `ImageResponse`: each image with `b64_json`, `revised_prompt` and `url`
    (null where absent), and a `usage` block of zeros for models that report none."""
    item = {
        "b64_json": PNG_B64 if b64 else None,
        "revised_prompt": None,
        "url": None if b64 else "https://images.example/koboi.png",
    }
    body = {
        "created": 1732000000,
        "data": [dict(item) for _ in range(n)],
        "usage": {
            "input_tokens": 0,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
            "output_tokens": 0,
            "total_tokens": 0,
        },
    }
    return Reply(200, proxy_headers(model), _dump(body))


def speech_response(audio: bytes, model: str = "openai/tts-1", delay: float = 0.0) -> Reply:
    """Speech as the proxy streams it: `audio/mpeg` whatever the format asked for, in
    8 KiB pieces (its `AUDIO_SPEECH_CHUNK_SIZE`), with its own headers."""
    headers = {**proxy_headers(model), "content-type": "audio/mpeg"}
    headers.pop("x-litellm-response-cost", None)
    frames: list[bytes | str | dict[str, Any]] = [
        audio[i : i + 8192] for i in range(0, len(audio), 8192)
    ]
    return Reply(200, headers, frames=frames, delay=delay)


def transcription_response(text: str, model: str = "openai/whisper-1") -> Reply:
    """LiteLLM's `TranscriptionResponse` (inferred): JSON whatever the format."""
    return Reply(200, proxy_headers(model), _dump({"text": text}))


def moderation_response(
    flagged: Sequence[str] = (), model: str = "openai/omni-moderation-latest"
) -> Reply:
    """OpenAI's moderation answer, which the proxy passes through."""
    categories = (
        "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
        "illicit/violent", "self-harm", "self-harm/intent", "self-harm/instructions", "sexual",
        "sexual/minors", "violence", "violence/graphic",
    )  # fmt: skip
    result = {
        "flagged": bool(flagged),
        "categories": {c: c in flagged for c in categories},
        "category_scores": {c: 0.9 if c in flagged else 0.0001 for c in categories},
        "category_applied_input_types": {c: ["text"] for c in categories},
    }
    body = {"id": "modr-koboi", "model": model, "results": [result]}
    return Reply(200, proxy_headers(model), _dump(body))


def rerank_response(
    scores: Sequence[float],
    model: str = "cohere/rerank-english-v3.0",
    documents: Sequence[str] | None = None,
    top_n: int | None = None,
) -> Reply:
    """LiteLLM's `RerankResponse`, Cohere's shape: results by relevance, `meta.billed_units`."""
    ranked = sorted(enumerate(scores), key=lambda item: -item[1])[:top_n]
    results: list[dict[str, Any]] = []
    for index, score in ranked:
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if documents is not None:
            result["document"] = {"text": documents[index]}
        results.append(result)
    body = {
        "id": "rerank-koboi",
        "results": results,
        "meta": {"api_version": {"version": "1"}, "billed_units": {"search_units": 1}},
    }
    return Reply(200, proxy_headers(model), _dump(body))
