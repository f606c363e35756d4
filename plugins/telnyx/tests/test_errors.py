"""Error mapping for every Telnyx status and body, mid-stream frames, rate-limit headers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from llm_router_telnyx import TelnyxProvider, TelnyxSettings
from llm_router_telnyx import testing as fake
from multidict import CIMultiDict

from router.spec import (
    ContextLengthExceeded,
    Operation,
    ProviderConfig,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamResponse,
    UpstreamServerError,
    UpstreamUnavailable,
)
from router.testing import Reply


def provider() -> TelnyxProvider:
    return TelnyxProvider(
        ProviderConfig(
            name="tx",
            base_url="http://127.0.0.1:9/v2/ai",
            api_key="KEYsecret",
            settings=TelnyxSettings(),
        )
    )


def error_for(reply: Reply) -> UpstreamError:
    return provider().get_error(
        UpstreamResponse(reply.status, CIMultiDict(reply.headers), reply.body)
    )


def test_fake_bodies_are_byte_exact():
    assert fake.auth_failed().body == (
        b'{"errors":[{"code":"10009","title":"Authentication failed","detail":"The required '
        b'authentication headers were either invalid or not included in the request.",'
        b'"meta":{"url":"https://developers.telnyx.com/docs/overview/errors/10009"}}]}'
    )
    assert fake.rate_limited(reset=7).headers == {
        "content-type": "application/json",
        "x-ratelimit-limit": "100",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "7",
    }
    assert fake.validation_error(style="v1").body == (
        b'{"detail":[{"loc":["body","messages"],"msg":"field required",'
        b'"type":"value_error.missing"}]}'
    )


@pytest.mark.parametrize(
    ("reply", "cls", "status", "code", "text"),
    [
        (fake.auth_failed(), UpstreamAuthError, 401, "upstream_authentication_failed", "10009"),
        (
            fake.auth_failed("Could not understand the provided credentials.", pointer=True),
            UpstreamAuthError,
            401,
            "upstream_authentication_failed",
            "Could not understand",
        ),
        (fake.unauthorized(), UpstreamAuthError, 401, "upstream_authentication_failed", "Missing"),
        (fake.rate_limited(), UpstreamRateLimited, 429, "rate_limit_exceeded", "Too many"),
        (fake.unexpected_error(), UpstreamServerError, 502, "upstream_server_error", "occured"),
        (fake.service_unavailable(), UpstreamUnavailable, 503, "upstream_unavailable", "Service"),
        (
            fake.detail_error(404, "Not Found"),
            UpstreamNotFound,
            404,
            "model_not_found",
            "Not Found",
        ),
        (
            fake.detail_error(400, "Model foo/bar is not available"),
            UpstreamBadRequest,
            400,
            None,
            "foo/bar",
        ),
        (
            fake.detail_error(
                400, "This model's maximum context length is 8192 tokens. However, you requested"
            ),
            ContextLengthExceeded,
            400,
            "context_length_exceeded",
            "8192",
        ),
    ],
)
def test_error_mapping(reply, cls, status, code, text):
    error = error_for(reply)
    assert type(error) is cls
    assert error.status == status
    assert error.code == code
    assert error.upstream_status == reply.status
    assert text in error.message


def test_service_unavailable_with_code():
    error = error_for(fake.service_unavailable(code="10020"))
    assert error.message.endswith("Service unavailable (Telnyx code 10020)")


@pytest.mark.parametrize("style", ["v1", "v2"])
def test_422_names_the_field(style):
    error = error_for(fake.validation_error("messages", style=style))
    assert type(error) is UpstreamBadRequest
    assert error.status == 400 and error.type == "invalid_request_error"
    assert error.param == "messages"
    assert "messages: Field required" in error.message or "messages: field required" in (
        error.message
    )


def test_422_nested_field_and_several_items():
    body = {
        "detail": [
            {"type": "string_type", "loc": ["body", "messages", 0, "content"], "msg": "bad"},
            {"type": "missing", "loc": ["body", "model"], "msg": "Field required"},
        ]
    }
    error = error_for(fake._error(422, orjson.dumps(body)))
    assert error.param == "messages.0.content"
    assert "messages.0.content: bad; model: Field required" in error.message


def test_422_never_echoes_input():
    secret = "sk-client-owned-secret"
    error = error_for(fake.validation_error("messages", echo={"openai_api_key": secret}))
    assert secret not in error.message and secret not in error.to_json().decode()


def test_422_json_decode_has_no_param():
    error = error_for(fake.json_error())
    assert type(error) is UpstreamBadRequest
    assert error.param is None and "JSON decode error" in error.message


def test_detail_object_and_pointer_source():
    nf = {"detail": [{"code": "404", "title": "Not Found", "detail": "Bucket b1 not found"}]}
    error = error_for(fake._error(404, orjson.dumps(nf)))
    assert type(error) is UpstreamNotFound and "Bucket b1 not found" in error.message
    body = {"errors": [{"code": "10015", "title": "Bad", "source": {"pointer": "/tools/0"}}]}
    error = error_for(fake._error(400, orjson.dumps(body)))
    assert type(error) is UpstreamBadRequest and error.param == "tools.0"


def test_openai_envelope_and_text_bodies_still_parse():
    body = {"error": {"message": "Incorrect API key", "type": "x", "code": "invalid_api_key"}}
    assert type(error_for(fake._error(401, orjson.dumps(body)))) is UpstreamAuthError
    reply = Reply(502, {"content-type": "text/html"}, b"<html>Bad Gateway</html>")
    error = error_for(reply)
    assert type(error) is UpstreamServerError and "Bad Gateway" in error.message


# -- rate limits --------------------------------------------------------------------------------


def test_rate_limit_headers_parsed():
    info = provider().get_rate_limit_info(CIMultiDict(fake.rate_limit_headers(100, 42, 30)))
    assert info.limit_requests == 100
    assert info.remaining_requests == 42
    assert info.reset_requests == 30.0
    assert not info.exhausted and info.wait_hint() is None
    info = provider().get_rate_limit_info(CIMultiDict(fake.rate_limit_headers(100, 0, 30)))
    assert info.exhausted and info.wait_hint() == 30.0


def test_429_retry_after_from_reset():
    assert error_for(fake.rate_limited(reset=7)).retry_after == 7.0
    # A 429 whose headers still claim budget left: the reset is the wait all the same.
    reply = fake._error(429, fake.RATE_LIMITED_BODY, fake.rate_limit_headers(100, 3, 9))
    assert error_for(reply).retry_after == 9.0
    assert error_for(fake._error(429, fake.RATE_LIMITED_BODY)).retry_after is None


# -- mid-stream error frames ----------------------------------------------------------------------


def frame_error(payload: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as info:
        provider().transform_stream_event(Operation.CHAT, orjson.dumps(payload))
    return info.value


@pytest.mark.parametrize(
    ("payload", "cls", "text"),
    [
        (fake.stream_error_reply().frames[-1], UpstreamServerError, "engine died"),
        ({"error": "stream error"}, UpstreamServerError, "stream error"),
        ({"error": {"message": "slow down", "code": "429"}}, UpstreamRateLimited, "slow down"),
        ({"object": "error", "message": "bad", "code": 400}, UpstreamBadRequest, "bad"),
        (orjson.loads(fake.RATE_LIMITED_BODY), UpstreamRateLimited, "10011"),
        (orjson.loads(fake.AUTH_FAILED_BODY), UpstreamAuthError, "10009"),
        (orjson.loads(fake.UNAUTHORIZED_BODY), UpstreamAuthError, "Missing authentication"),
        (orjson.loads(fake.UNEXPECTED_ERROR_BODY), UpstreamServerError, "Unexpected error"),
    ],
)
def test_stream_error_frames(payload, cls, text):
    error = frame_error(payload)
    assert type(error) is cls and text in error.message
