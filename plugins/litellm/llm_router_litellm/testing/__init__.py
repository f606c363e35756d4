"""A faithful fake LiteLLM proxy, for testing configs that use `plugin: litellm` offline.

Each reply function returns a `router.testing.Reply` that answers as LiteLLM 1.106.2 does
on the wire: status, headers, exact body bytes (FastAPI's compact JSON), SSE framing,
mid-stream error frames. Queue them on a `FakeUpstream`:

    upstream.add("/v1/chat/completions", upstream_rate_limited())

or install `FakeLiteLLMProxy(keys=..., models=...)`, which answers like a whole proxy.
Facts come from captures of the real proxy unless a docstring says *inferred*.
"""

from llm_router_litellm.testing.errors import (
    ERRORS,
    api_error,
    budget_exceeded,
    content_policy,
    context_window,
    error,
    invalid_model,
    invalid_virtual_key,
    key_not_sk,
    key_rate_limited,
    malformed_json,
    method_not_allowed,
    missing_messages,
    missing_parameter,
    no_api_key,
    no_db,
    no_healthy_deployment,
    not_found,
    service_unavailable,
    timeout,
    upstream_auth,
    upstream_rate_limited,
    upstream_unreachable,
)
from llm_router_litellm.testing.proxy import FakeLiteLLMProxy
from llm_router_litellm.testing.replies import (
    MODEL,
    chat_frames,
    chat_response,
    chat_stream,
    chat_stream_failing,
    completion_response,
    embedding_response,
    image_response,
    json_reply,
    models_response,
    moderation_response,
    proxy_headers,
    rerank_response,
    speech_response,
    stream_error_frame,
    transcription_response,
)

__all__ = [
    "ERRORS",
    "MODEL",
    "FakeLiteLLMProxy",
    "api_error",
    "budget_exceeded",
    "chat_frames",
    "chat_response",
    "chat_stream",
    "chat_stream_failing",
    "completion_response",
    "content_policy",
    "context_window",
    "embedding_response",
    "error",
    "image_response",
    "invalid_model",
    "invalid_virtual_key",
    "json_reply",
    "key_not_sk",
    "key_rate_limited",
    "malformed_json",
    "method_not_allowed",
    "missing_messages",
    "missing_parameter",
    "models_response",
    "moderation_response",
    "no_api_key",
    "no_db",
    "no_healthy_deployment",
    "not_found",
    "proxy_headers",
    "rerank_response",
    "service_unavailable",
    "speech_response",
    "stream_error_frame",
    "timeout",
    "transcription_response",
    "upstream_auth",
    "upstream_rate_limited",
    "upstream_unreachable",
]
