"""Pure translation: requests, responses, stream events, errors, limits and settings."""

import time

import httpx
import orjson
import pytest
from llm_router_tokligence import TokligenceProvider, TokligenceSettings
from llm_router_tokligence import testing as fake
from pydantic import ValidationError

from router.spec import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    InsufficientQuota,
    Operation,
    ProviderConfig,
    ProviderConfigError,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamResponse,
    UpstreamServerError,
)
from router.testing import Received, Reply

BASE = "http://127.0.0.1:9/v1"


def make(api_key: str | None = "tok_secret123", **settings: object) -> TokligenceProvider:
    config = ProviderConfig(
        name="tok", base_url=BASE, api_key=api_key, settings=TokligenceSettings(**settings)
    )
    return TokligenceProvider(config)


def response(reply: Reply) -> UpstreamResponse:
    return UpstreamResponse(reply.status, httpx.Headers(reply.headers), reply.body)


# -- requests -------------------------------------------------------------------------------


def test_chat_request_passes_the_body_through_with_the_upstream_model():
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "seed": 7}
    request = make().build_request(Operation.CHAT, dict(body), "gpt-4o-mini", stream=True)
    assert str(request.url) == BASE + "/chat/completions"
    assert request.headers["authorization"] == "Bearer tok_secret123"
    assert request.headers["accept"] == "text/event-stream"
    assert orjson.loads(request.content) == {**body, "model": "gpt-4o-mini"}


def test_key_can_go_in_x_api_key_instead():
    request = make(auth_header="x-api-key").build_request(Operation.CHAT, {}, "m")
    assert request.headers["x-api-key"] == "tok_secret123"
    assert "authorization" not in request.headers


def test_no_key_means_no_credential_header():
    request = make(api_key=None).build_request(Operation.EMBEDDINGS, {"input": "x"}, "emb")
    assert str(request.url) == BASE + "/embeddings"
    assert "authorization" not in request.headers and "x-api-key" not in request.headers


def test_models_request_sends_the_key_although_the_gateway_needs_none():
    request = make().models_request()
    assert request is not None
    assert str(request.url) == BASE + "/models"
    assert request.headers["authorization"] == "Bearer tok_secret123"


def test_operations_and_stream_usage():
    provider = make()
    assert provider.operations == {
        Operation.CHAT,
        Operation.EMBEDDINGS,
        Operation.IMAGES,
        Operation.RERANK,
    }
    assert provider.urls[Operation.RERANK] == BASE + "/rerank"
    assert Operation.COMPLETIONS not in provider.urls
    assert TokligenceProvider.stream_usage is False
    chat_only = make(embeddings=False, images=False, rerank=False)
    assert chat_only.operations == {Operation.CHAT}
    assert Operation.EMBEDDINGS not in chat_only.urls
    assert TokligenceProvider.operations == provider.operations  # (the class keeps its own)
    only_images = make(rerank=False)
    assert Operation.IMAGES in only_images.operations
    assert Operation.RERANK not in only_images.operations


# -- keys and settings ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["tk-abc123", "tok_abc123", None])
def test_accepted_keys(key):
    make(api_key=key)


@pytest.mark.parametrize("key", ["sk-live-very-secret", "tok-abc", "TK-abc", "bearer tok_x"])
def test_other_keys_are_a_config_error_that_names_both_prefixes_but_not_the_key(key):
    with pytest.raises(ProviderConfigError) as info:
        make(api_key=key)
    assert info.value.key == "api_key"
    assert "`tk-`" in str(info.value) and "`tok_`" in str(info.value)
    assert key not in str(info.value)


def test_settings_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError):
        TokligenceSettings.model_validate({"auth_heder": "x-api-key"})
    with pytest.raises(ValidationError):
        TokligenceSettings.model_validate({"auth_header": "cookie"})
    assert TokligenceSettings.model_validate({}) == TokligenceSettings(
        auth_header="authorization", embeddings=True
    )


def test_every_setting_is_documented():
    for name, field in TokligenceSettings.model_fields.items():
        assert field.description, name


# -- responses ------------------------------------------------------------------------------


def test_response_copies_usage_extras_to_openai_details():
    reply = fake.chat_reply("hi", "gpt-4o", usage=(10, 5), reasoning_tokens=2, cache_read_tokens=4)
    data = make().transform_response(Operation.CHAT, response(reply))
    assert data["choices"][0]["message"]["content"] == "hi"
    assert data["usage"]["completion_tokens_details"] == {"reasoning_tokens": 2}
    assert data["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}
    assert data["usage"]["total_tokens"] == 15


def test_plain_response_is_untouched():
    reply = fake.chat_reply()
    assert make().transform_response(Operation.CHAT, response(reply)) == orjson.loads(reply.body)


def _event(frame: bytes | str | dict) -> bytes:
    assert isinstance(frame, bytes) and frame.startswith(b"data: ")
    return frame[6:].strip()


def test_stream_chunks_pass_with_their_finish_reason():
    frames = fake.chat_frames(["Hi"])
    provider = make()
    role, text, finish = (
        provider.transform_stream_event(Operation.CHAT, _event(f)) for f in frames[:3]
    )
    assert role["choices"][0]["delta"] == {"role": "assistant"}
    assert role["choices"][0]["finish_reason"] is None
    assert text["choices"][0]["delta"] == {"content": "Hi"}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in finish


def test_stream_tool_call_index_zero_is_restored():
    frames = fake.tool_call_stream(arguments=['{"a":1}']).frames
    assert frames is not None
    provider = make()
    chunks = [provider.transform_stream_event(Operation.CHAT, _event(f)) for f in frames[:2]]
    first, second = (c["choices"][0]["delta"]["tool_calls"][0] for c in chunks)
    assert first["index"] == 0 and first["id"] == "call_1"
    assert second == {"index": 0, "function": {"arguments": '{"a":1}'}}
    other = b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1}]}}]}'
    chunk = provider.transform_stream_event(Operation.CHAT, other)
    assert chunk["choices"][0]["delta"]["tool_calls"] == [{"index": 1}]


@pytest.mark.parametrize(
    ("frame", "cls"),
    [
        (fake.STREAM_ERROR_FRAME, UpstreamServerError),
        (b'data: {"error":{"message":"slow down","type":"rate_limit_error"}}', UpstreamRateLimited),
        (
            b'data: {"error":"openai: too long (type=invalid_request_error, '
            b'code=context_length_exceeded)"}',
            ContextLengthExceeded,
        ),
    ],
)
def test_stream_error_frames(frame, cls):
    with pytest.raises(cls) as info:
        make().transform_stream_event(Operation.CHAT, _event(frame))
    assert "failed mid-stream" in info.value.message


# -- errors ---------------------------------------------------------------------------------

OPENAI_429 = '{"error":{"message":"Rate limit reached","type":"rate_limit_error","code":null}}'
OPENAI_CTX = (
    '{"error":{"message":"maximum context length is 8192","code":"context_length_exceeded"}}'
)
ERRORS = [
    # reply, class, client status, type, code
    (fake.missing_api_key(), UpstreamAuthError, 401, "authentication_error", None),
    (fake.invalid_token(), UpstreamAuthError, 401, "authentication_error", None),
    (fake.invalid_api_key(), UpstreamAuthError, 401, "authentication_error", None),
    (fake.bad_json(), UpstreamBadRequest, 400, "invalid_request_error", None),
    (fake.firewall_block(), ContentPolicyViolation, 400, "invalid_request_error", None),
    (fake.insufficient_balance(), InsufficientQuota, 429, "insufficient_quota", None),
    (fake.no_adapter("gpt-9"), UpstreamNotFound, 404, "invalid_request_error", "model_not_found"),
    (fake.streaming_unsupported(), UpstreamNotFound, 404, None, "streaming_not_supported"),
    (fake.model_required(), UpstreamServerError, 502, "server_error", None),
    (fake.embeddings_unsupported(), UpstreamNotFound, 404, None, "embeddings_not_supported"),
    (fake.service_unavailable(), UpstreamServerError, 502, "server_error", None),
    (fake.rate_limited(), UpstreamRateLimited, 429, "rate_limit_error", None),
    (fake.page_not_found(), UpstreamNotFound, 404, None, "not_found"),
    (fake.method_not_allowed(), UpstreamBadRequest, 400, None, None),
    (fake.upstream_error("Rate limit reached", "requests", "rate_limit_exceeded"),
     UpstreamRateLimited, 429, None, None),
    (fake.upstream_error("You exceeded your current quota", "insufficient_quota",
                         "insufficient_quota"), InsufficientQuota, 429, None, None),
    (fake.upstream_error("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
     UpstreamAuthError, 401, None, None),
    (fake.upstream_error("This model's maximum context length is 8192 tokens (8000 in the "
                         "messages)", "invalid_request_error", "context_length_exceeded"),
     ContextLengthExceeded, 400, None, None),
    (fake.upstream_error("flagged by the safety system", "invalid_request_error",
                         "content_policy_violation"), ContentPolicyViolation, 400, None, None),
    (fake.upstream_error("The server had an error", "server_error", None),
     UpstreamServerError, 502, None, None),
    (fake.upstream_error("Invalid value for temperature", "invalid_request_error", None),
     UpstreamServerError, 502, None, None),
    (fake.upstream_http_error(429, OPENAI_429), UpstreamRateLimited, 429, None, None),
    (fake.upstream_http_error(429, "slow down", adapter="anthropic"), UpstreamRateLimited, 429,
     None, None),
    (fake.upstream_http_error(401, "Unauthorized"), UpstreamAuthError, 401, None, None),
    (fake.upstream_http_error(400, OPENAI_CTX), ContextLengthExceeded, 400, None, None),
    (fake.upstream_http_error(500, "<html>oops</html>"), UpstreamServerError, 502, None, None),
    (fake.upstream_http_error(503, "overloaded"), UpstreamServerError, 502, None, None),
    (fake.flat_error(502, 'openai: Post "https://api.openai.com/v1/chat/completions": dial tcp: '
                     "i/o timeout"), UpstreamServerError, 502, None, None),
    (fake.envelope_error(502, "openai: Slow down (type=requests, code=rate_limit_exceeded)",
                         "upstream_error"), UpstreamRateLimited, 429, None, None),
    (fake.envelope_error(400, "model not allowed", "invalid_request_error"), UpstreamBadRequest,
     400, None, None),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "cls", "status", "type_", "code"), ERRORS)
def test_error_mapping(reply, cls, status, type_, code):
    error = make().get_error(response(reply))
    assert type(error) is cls
    assert error.status == status
    assert error.upstream_status == reply.status
    assert error.provider == "tok"
    assert error.message.startswith(f"upstream 'tok' returned {reply.status}")
    if type_ is not None:
        assert error.type == type_
    if code is not None:
        assert error.code == code


def test_error_messages_keep_the_gateway_reason_and_add_hints():
    provider = make()
    assert "`tok_`" in provider.get_error(response(fake.invalid_token())).message
    assert "/v1" in provider.get_error(response(fake.page_not_found())).message
    error = provider.get_error(response(fake.no_adapter("gpt-9")))
    assert (
        error.message == "upstream 'tok' returned 502: router: no adapter found for model \"gpt-9\""
    )


# -- rate limits ----------------------------------------------------------------------------


def test_429_retry_after_comes_from_the_reset_timestamp():
    reply = fake.rate_limited(reset=int(time.time()) + 20)
    error = make().get_error(response(reply))
    assert error.retry_after is not None and 17 <= error.retry_after <= 20


def test_429_reset_is_used_even_when_remaining_is_not_zero():
    reply = fake.rate_limited(reset=int(time.time()) + 10, remaining=3)
    error = make().get_error(response(reply))
    assert error.retry_after is not None and 7 <= error.retry_after <= 10


def test_rate_limit_headers_on_success():
    headers = httpx.Headers(
        {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0",
         "X-RateLimit-Reset": str(int(time.time()) + 30)}
    )  # fmt: skip
    info = make().get_rate_limit_info(headers)
    assert info is not None
    assert (info.limit_requests, info.remaining_requests) == (60, 0)
    assert info.exhausted and 27 <= (info.wait_hint() or 0) <= 30
    assert make().get_rate_limit_info(httpx.Headers({})) is None


# -- the fake itself: the gateway's exact bytes ----------------------------------------------


def test_fake_bodies_are_the_gateways_bytes():
    assert fake.missing_api_key().body == b'{"error":"missing api key"}\n'
    assert (
        fake.no_adapter("xyz").body == b'{"error":"router: no adapter found for model \\"xyz\\""}\n'
    )
    assert fake.upstream_http_error(500, "<b>").body == (
        b'{"error":"openai: http 500: \\u003cb\\u003e"}\n'
    )
    limited = fake.rate_limited(reset=1699999999)
    assert limited.body == b"Rate limit exceeded. Please try again later.\n"
    assert limited.headers["content-type"] == "text/plain; charset=utf-8"
    assert limited.headers["X-RateLimit-Reset"] == "1699999999"
    assert fake.page_not_found().body == b"404 page not found\n"
    frames = fake.stream_error(["a"]).frames
    assert frames is not None and frames[-1] == b'data: {"error": "stream error"}\n\n'
    assert b"[DONE]" not in b"".join(f for f in frames if isinstance(f, bytes))
    first = fake.chat_frames([]).__getitem__(0)
    assert first == (
        b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1732000000,'
        b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant"},'
        b'"finish_reason":null,"logprobs":null}]}\n\n'
    )


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b"{}", {}, b'{"error":"missing api key"}\n'),
        (b"{}", {"authorization": "Bearer tk-x"}, b'{"error":"invalid token"}\n'),
        (b"{}", {"x-api-key": "tok_bad"}, b'{"error":"invalid api key"}\n'),
        (b"", {"x-api-key": "tok_ok"}, b'{"error":"unexpected end of JSON input"}\n'),
        (b"{}", {"x-api-key": "tok_ok"}, b'{"error":"router: model name required"}\n'),
        (b'{"model":"loopback","stream":true}', {"authorization": "Bearer tok_ok"},
         b'{"error":"router: selected adapter does not support streaming"}\n'),
    ],
)  # fmt: skip
def test_fake_gateway_checks_like_the_gateway(body, headers, expected):
    gateway = fake.TokligenceGateway(keys=frozenset({"tok_ok"}))
    reply = gateway.chat(Received("POST", fake.CHAT_PATH, headers, body, 0.0))
    assert reply.body == expected


def test_fake_gateway_loopback_echoes_the_last_user_message():
    body = b'{"model":"loopback","messages":[{"role":"user","content":"hi"}]}'
    reply = fake.TokligenceGateway().chat(Received("POST", fake.CHAT_PATH, {}, body, 0.0))
    data = orjson.loads(reply.body)
    assert data["choices"][0]["message"]["content"] == "[loopback] hi"
    assert data["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
