"""Error mapping: every body the gateway or the model server sends, to the right class."""

from __future__ import annotations

import httpx
import pytest
from llm_router_telkom import TelkomProvider, TelkomSettings, kong
from llm_router_telkom import testing as telkom

from router.spec import (
    ContextLengthExceeded,
    ProviderConfig,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamNotFound,
    UpstreamPermissionError,
    UpstreamRateLimited,
    UpstreamResponse,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from router.testing import Reply

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def provider() -> TelkomProvider:
    config = ProviderConfig(
        name="tk",
        base_url="http://127.0.0.1:9/Telkom-LLM/0.0.4",
        api_key=KEY,
        settings=TelkomSettings(),
    )
    return TelkomProvider(config)


def error_of(provider: TelkomProvider, reply: Reply):
    return provider.get_error(
        UpstreamResponse(reply.status, httpx.Headers(reply.headers), reply.body)
    )


def test_kong_bodies_are_byte_exact():
    body = telkom.kong_body(kong.NO_ROUTE, request_id="a" * 32)
    assert body == (
        b'{\n  "message":"no Route matched with those values",\n'
        b'  "request_id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"\n}'
    )
    assert len(body) == 103  # the Content-Length captured from Kong 3.10
    assert telkom.kong_body(kong.NO_API_KEY, kong=2) == (
        b'{\n  "message":"No API key found in request"\n}'
    )


@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.parametrize(
    ("reply", "cls", "status", "code", "words"),
    [
        (telkom.no_api_key, UpstreamAuthError, 401, "upstream_authentication_failed", "tk.api_key"),
        (
            telkom.invalid_credentials,
            UpstreamAuthError,
            401,
            "upstream_authentication_failed",
            "does not know this key",
        ),
        (
            telkom.duplicate_api_key,
            UpstreamAuthError,
            401,
            "upstream_authentication_failed",
            "saw the API key twice",
        ),
        (telkom.rate_limited, UpstreamRateLimited, 429, "rate_limit_exceeded", "API rate limit"),
        (
            telkom.no_route,
            UpstreamNotFound,
            404,
            "upstream_route_not_found",
            "check providers.tk.settings.chat_path",
        ),
        (
            telkom.unexpected_error,
            UpstreamServerError,
            502,
            "upstream_server_error",
            "An unexpected error occurred",
        ),
    ],
)
def test_kong_errors(provider, version, reply, cls, status, code, words):
    error = error_of(provider, reply(kong=version))
    assert type(error) is cls
    assert error.status == status and error.code == code
    assert words in error.message
    assert error.message.startswith("upstream 'tk' returned")
    assert error.provider == "tk"
    assert KEY not in error.message


def test_kong_429_carries_retry_after(provider):
    error = error_of(provider, telkom.rate_limited(retry_after=17))
    assert error.retry_after == 17
    assert error.upstream_status == 429


def test_kong_0x_invalid_key_403_is_an_auth_error(provider):
    error = error_of(provider, telkom.invalid_credentials(kong=0))
    assert type(error) is UpstreamAuthError
    assert error.upstream_status == 403 and error.status == 401


def test_other_kong_403_is_a_permission_error(provider):
    error = error_of(provider, telkom.kong_error(403, "You cannot consume this service"))
    assert type(error) is UpstreamPermissionError


def test_no_route_names_the_url(provider):
    error = error_of(provider, telkom.no_route())
    assert "/Telkom-LLM/0.0.4/llm/chat/completions" in error.message
    assert "127.0.0.1" not in error.message  # the path, not the upstream's host
    assert "/chat/completions" in error.message


@pytest.mark.parametrize(
    ("reply", "cls", "status", "code", "param"),
    [
        (
            telkom.backend_error(
                400,
                "This model's maximum context length is 8192 tokens. However, you requested "
                "9000 tokens. Please reduce the length of the messages.",
                param="messages",
                code=400,
            ),
            ContextLengthExceeded,
            400,
            "context_length_exceeded",
            "messages",
        ),
        (
            telkom.backend_error(400, "temperature must be in [0, 2]", param="temperature"),
            UpstreamBadRequest,
            400,
            None,
            "temperature",
        ),
        (
            telkom.backend_error(
                404, "The model `telkom-ai-x` does not exist.", type="NotFoundError", code=404
            ),
            UpstreamNotFound,
            404,
            "model_not_found",
            None,
        ),
        (
            telkom.backend_error(500, "CUDA out of memory", type="InternalServerError"),
            UpstreamServerError,
            502,
            "upstream_server_error",
            None,
        ),
        (
            telkom.backend_detail(
                422,
                [{"loc": ["body", "messages"], "msg": "field required", "type": "missing"}],
            ),
            UpstreamBadRequest,
            400,
            None,
            "messages",
        ),
        (
            telkom.backend_detail(503, "Service Unavailable"),
            UpstreamUnavailable,
            503,
            "upstream_unavailable",
            None,
        ),
        (
            telkom.backend_detail(504, "Gateway Timeout"),
            UpstreamTimeout,
            504,
            "upstream_timeout",
            None,
        ),
    ],
)
def test_backend_errors(provider, reply, cls, status, code, param):
    error = error_of(provider, reply)
    assert type(error) is cls
    assert (error.status, error.code, error.param) == (status, code, param)
    assert error.upstream_status == reply.status


def test_backend_error_with_kong_like_message_key_is_not_kong(provider):
    reply = Reply(400, {}, b'{"object":"error","message":"bad input","type":"BadRequestError"}')
    error = error_of(provider, reply)
    assert type(error) is UpstreamBadRequest and "bad input" in error.message


def test_plain_text_error(provider):
    error = error_of(provider, Reply(502, {"content-type": "text/html"}, b"<html>Bad Gateway"))
    assert type(error) is UpstreamServerError and "Bad Gateway" in error.message
