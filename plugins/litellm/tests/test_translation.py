"""Pure translation: requests, responses, stream chunks, errors and rate-limit headers."""

from __future__ import annotations

import httpx
import orjson
import pytest
from llm_router_litellm import LiteLLMProvider, LiteLLMSettings
from llm_router_litellm import testing as fake
from llm_router_litellm.errors import clean_message
from llm_router_litellm.ratelimits import rate_limit_info

from router.spec import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    InsufficientQuota,
    Operation,
    ProviderConfig,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamConnectionError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamResponse,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from router.testing import Reply


def provider(**settings: object) -> LiteLLMProvider:
    config = ProviderConfig(
        name="koboi",
        base_url="http://127.0.0.1:4000/v1/",
        api_key="sk-proxy-secret-1234",
        settings=LiteLLMSettings.model_validate(settings),
    )
    return LiteLLMProvider(config)


def response(reply: Reply) -> UpstreamResponse:
    return UpstreamResponse(reply.status, httpx.Headers(reply.headers), reply.body)


def frame_payload(frame: bytes | str | dict) -> bytes:
    if isinstance(frame, dict):
        return orjson.dumps(frame)
    raw = frame.encode() if isinstance(frame, str) else frame
    return raw.removeprefix(b"data: ").rstrip(b"\n")


# -- requests ----------------------------------------------------------------------------------


def test_bearer_auth_and_verbatim_provider_prefixed_model():
    p = provider()
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}
    request = p.build_request(Operation.CHAT, body, "anthropic/claude-4-5-sonnet")
    assert str(request.url) == "http://127.0.0.1:4000/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-proxy-secret-1234"
    assert "x-litellm-api-key" not in request.headers
    sent = orjson.loads(request.content)
    assert sent == {
        "model": "anthropic/claude-4-5-sonnet",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
    }


def test_x_litellm_api_key_header_carries_the_raw_key():
    request = provider(auth_header="x-litellm-api-key").build_request(
        Operation.CHAT, {"messages": []}, "m"
    )
    assert request.headers["x-litellm-api-key"] == "sk-proxy-secret-1234"
    assert "authorization" not in request.headers


def test_streamed_request_asks_for_event_stream():
    request = provider().build_request(Operation.CHAT, {"messages": []}, "m", stream=True)
    assert request.headers["accept"] == "text/event-stream"


def test_paths_for_every_operation_and_models():
    p = provider()
    assert str(p.build_request(Operation.COMPLETIONS, {"prompt": "x"}, "m").url).endswith(
        "/v1/completions"
    )
    assert str(p.build_request(Operation.EMBEDDINGS, {"input": "x"}, "m").url).endswith(
        "/v1/embeddings"
    )
    models = p.models_request()
    assert models is not None and str(models.url) == "http://127.0.0.1:4000/v1/models"


def test_litellm_control_fields_are_stripped_and_others_pass_through():
    body = {
        "messages": [],
        "mock_response": "pwned",
        "mock_testing_rate_limit_error": True,
        "api_base": "http://elsewhere",
        "api_key": "sk-client-supplied",
        "base_url": "http://elsewhere",
        "user_config": {"model_list": []},
        "fallbacks": ["x"],
        "context_window_fallbacks": [{"a": ["b"]}],
        "num_retries": 5,
        "metadata": {"team": "a"},
        "tags": ["t"],
        "foo_bar": 1,
        "guided_json": {"type": "object"},
    }
    sent = provider().transform_request(Operation.CHAT, body, "m")
    assert sent == {
        "messages": [],
        "metadata": {"team": "a"},
        "tags": ["t"],
        "foo_bar": 1,
        "guided_json": {"type": "object"},
        "model": "m",
    }


def test_strip_fields_setting_replaces_the_default_list():
    body = {"messages": [], "metadata": {"a": 1}, "tags": ["t"], "num_retries": 2, "mock_x": 1}
    sent = provider(strip_fields=["metadata", "tags"]).transform_request(Operation.CHAT, body, "m")
    assert sent == {"messages": [], "num_retries": 2, "model": "m"}


# -- responses ---------------------------------------------------------------------------------


def test_chat_response_loses_litellms_extra_fields():
    # (what the OpenAI schema requires and LiteLLM drops, `logprobs`, the core adds)
    data = provider().transform_response(Operation.CHAT, response(fake.chat_response("Hi")))
    (choice,) = data["choices"]
    assert choice == {
        "finish_reason": "stop",
        "index": 0,
        "message": {"content": "Hi", "role": "assistant", "refusal": None},
    }
    assert data["usage"] == {"completion_tokens": 1, "prompt_tokens": 8, "total_tokens": 9}
    assert data["model"] == "openai/gpt-4o-mini"


def test_refusal_lifted_from_provider_specific_fields():
    body = orjson.loads(fake.chat_response().body)
    body["choices"][0]["message"]["provider_specific_fields"] = {"refusal": "no"}
    reply = Reply(200, {}, orjson.dumps(body))
    data = provider().transform_response(Operation.CHAT, response(reply))
    assert data["choices"][0]["message"]["refusal"] == "no"


def test_embeddings_and_completions_pass_through():
    p = provider()
    emb = p.transform_response(Operation.EMBEDDINGS, response(fake.embedding_response()))
    assert emb["data"][0]["embedding"] == [0.1, 0.2, 0.3]
    text = p.transform_response(Operation.COMPLETIONS, response(fake.completion_response("ok")))
    assert text["choices"][0]["text"] == "ok"


def test_models_listing():
    models = provider().transform_models(response(fake.models_response(["openai/a", "up-429"])))
    assert [m["id"] for m in models] == ["openai/a", "up-429"]


# -- streams -----------------------------------------------------------------------------------


def test_stream_chunks_get_finish_reason_and_usage_chunk_gets_empty_choices():
    p = provider()
    chunks = [
        p.transform_stream_event(Operation.CHAT, frame_payload(f))
        for f in fake.chat_frames(["Hel", "lo"])
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None, None, None, "stop"]
    assert all("finish_reason" in c["choices"][0] for c in chunks[:-1])
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["total_tokens"] == 9
    assert usage_chunk["usage"]["cost"] == 1.8e-6  # allowed extra, passed on


def test_stream_tool_call_without_index_gets_one():
    data = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {}}],
                    "provider_specific_fields": {},
                },
            }
        ],
    }
    chunk = provider().transform_stream_event(Operation.CHAT, orjson.dumps(data))
    assert chunk is not None
    delta = chunk["choices"][0]["delta"]
    assert delta["tool_calls"][0]["index"] == 0
    assert "provider_specific_fields" not in delta


@pytest.mark.parametrize(
    ("code", "message", "cls"),
    [
        ("500", None, UpstreamConnectionError),  # litellm.APIConnectionError
        ("429", "litellm.RateLimitError: RateLimitError: slow down", UpstreamRateLimited),
        ("500", "litellm.InternalServerError: boom", UpstreamServerError),
        ("not-a-status", "something broke", UpstreamServerError),
    ],
)
def test_mid_stream_error_frame_raises(code, message, cls):
    frame = fake.stream_error_frame(code=code, **({"message": message} if message else {}))
    with pytest.raises(cls) as caught:
        provider().transform_stream_event(Operation.CHAT, frame_payload(frame))
    assert caught.value.provider == "koboi"


# -- errors ------------------------------------------------------------------------------------

EXPECTED = {
    "no_api_key": UpstreamAuthError,
    "invalid_virtual_key": UpstreamAuthError,
    "key_not_sk": UpstreamAuthError,
    "no_db": UpstreamAuthError,
    "invalid_model": UpstreamNotFound,
    "missing_messages": UpstreamBadRequest,
    "malformed_json": UpstreamBadRequest,
    "context_window": ContextLengthExceeded,
    "upstream_auth": UpstreamAuthError,
    "upstream_rate_limited": UpstreamRateLimited,
    "upstream_unreachable": UpstreamServerError,
    "key_rate_limited": UpstreamRateLimited,
    "no_healthy_deployment": UpstreamRateLimited,
    "budget_exceeded": InsufficientQuota,
    "service_unavailable": UpstreamUnavailable,
    "content_policy": ContentPolicyViolation,
    "timeout": UpstreamTimeout,
    "api_error": UpstreamServerError,
    "not_found": UpstreamNotFound,
    "method_not_allowed": UpstreamNotFound,
}


def test_every_fake_error_has_an_expectation():
    assert set(EXPECTED) == set(fake.ERRORS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_error_mapping(name):
    reply = fake.ERRORS[name]()
    error = provider().get_error(response(reply))
    assert type(error) is EXPECTED[name]
    assert error.upstream_status == reply.status
    assert error.message.startswith(f"upstream 'koboi' returned {reply.status}: ")
    assert "LiteLLM: model group" not in error.message
    assert "context_window_fallbacks" not in error.message


@pytest.mark.parametrize(
    ("name", "param", "retry_after"),
    [
        ("missing_messages", "messages", None),
        ("malformed_json", "request_body", None),
        ("no_api_key", None, None),  # `"param": "None"` is not a parameter
        ("upstream_rate_limited", None, 7.0),  # only as llm_provider-retry-after
        ("key_rate_limited", None, 60.0),
    ],
)
def test_error_param_and_retry_after(name, param, retry_after):
    error = provider().get_error(response(fake.ERRORS[name]()))
    assert error.param == param
    assert error.retry_after == retry_after


def test_clean_message_cuts_the_routing_epilogue():
    # Key material LiteLLM echoes is the core's to mask (`router.observability.redaction`),
    # for every provider; `test_e2e_errors` checks that none reaches the client.
    assert clean_message("litellm.X: boom\n\nLiteLLM: model group 'g' failed") == "litellm.X: boom"


def test_content_policy_and_plain_text_errors():
    p = provider()
    policy = fake.error(
        400, "litellm.ContentPolicyViolationError: flagged by the safety system", None
    )
    assert type(p.get_error(response(policy))) is ContentPolicyViolation
    text = Reply(502, {"content-type": "text/plain"}, b"Bad Gateway")
    error = p.get_error(response(text))
    assert type(error) is UpstreamServerError
    assert "Bad Gateway" in error.message


@pytest.mark.parametrize(
    "message",
    [
        # what a real proxy sends: the wrapper first, the specific class (twice) after
        "litellm.BadRequestError: litellm.ContentPolicyViolationError: "
        "litellm.ContentPolicyViolationError: AzureException - filtered",
        "litellm.ContentPolicyViolationError: litellm.BadRequestError: filtered",
    ],
)
def test_the_most_specific_litellm_class_named_decides(message):
    assert type(provider().get_error(response(fake.error(400, message, None)))) is (
        ContentPolicyViolation
    )
    assert type(provider().get_error(response(fake.content_policy()))) is ContentPolicyViolation


# -- rate limits -------------------------------------------------------------------------------


def test_rate_limit_headers_of_a_success():
    info = rate_limit_info(httpx.Headers(fake.proxy_headers(stream=True)))
    assert info is not None
    assert (info.limit_requests, info.remaining_requests) == (500, 499)
    assert (info.limit_tokens, info.remaining_tokens) == (200000, 199990)
    assert info.reset_requests == pytest.approx(0.12)
    assert not info.exhausted


def test_rate_limit_echo_headers_only():
    headers = httpx.Headers(
        {
            "llm_provider-x-ratelimit-remaining-requests": "3",
            "llm_provider-x-ratelimit-limit-tokens": "1000",
            "llm_provider-x-ratelimit-remaining-tokens": "0",
            "llm_provider-x-ratelimit-reset-tokens": "6m0s",
        }
    )
    info = rate_limit_info(headers)
    assert info is not None
    assert info.remaining_requests == 3
    assert (info.limit_tokens, info.remaining_tokens, info.reset_tokens) == (1000, 0, 360.0)
    assert info.exhausted and info.wait_hint() == 360.0


def test_rate_limit_descriptor_headers_and_negative_counters():
    headers = httpx.Headers(
        {
            "x-ratelimit-api_key-limit-requests": "10",
            "x-ratelimit-api_key-remaining-requests": "4",
            "x-ratelimit-team-remaining-requests": "2",
        }
    )
    info = rate_limit_info(headers)
    assert info is not None and (info.limit_requests, info.remaining_requests) == (10, 2)
    negative = rate_limit_info(
        httpx.Headers({"x-ratelimit-limit-requests": "1", "x-ratelimit-remaining-requests": "-2"})
    )
    assert negative is not None and negative.remaining_requests == 0
    assert rate_limit_info(httpx.Headers({"content-type": "application/json"})) is None
