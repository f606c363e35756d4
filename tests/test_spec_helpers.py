"""The helpers `router.spec` gives plugins, so that none copies the core's own code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from router.spec import (
    ContextLengthExceeded,
    MalformedResponse,
    Operation,
    Provider,
    ProviderConfig,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamServerError,
    error_class,
    implied_status,
    is_error_frame,
    parse_int_header,
    parse_rate_limit_headers,
    parse_stream_event,
    stream_error,
    upstream_error,
)


def test_upstream_error_is_worded_like_every_providers():
    error = upstream_error(
        UpstreamNotFound, 404, "no route", provider="p", code="route_missing", param="x"
    )
    assert type(error) is UpstreamNotFound
    assert error.message == "upstream 'p' returned 404: no route"
    assert (error.code, error.upstream_status, error.provider) == ("route_missing", 404, "p")
    assert error.param is None  # only the classes that name a request field keep it
    bad = upstream_error(UpstreamBadRequest, 400, "", provider="p", param="temperature")
    assert (bad.message, bad.param) == ("upstream 'p' returned 400", "temperature")
    slow = upstream_error(UpstreamRateLimited, 429, "slow", provider="p", retry_after=2.0)
    assert (slow.retry_after, slow.code) == (2.0, "rate_limit_exceeded")


def test_error_class_reads_the_status_and_the_wording():
    assert error_class(400, "maximum context length is 8192 tokens") is ContextLengthExceeded
    assert error_class(429, "") is UpstreamRateLimited
    assert error_class(500, "context length") is UpstreamServerError


@pytest.mark.parametrize(
    ("message", "code", "error_type", "status"),
    [
        ("slow down", "429", "None", 429),  # LiteLLM-style: the proxy's status in the code
        ("x", "1234", None, 500),  # a number that is no HTTP error status
        ("bad key", "invalid_api_key", "invalid_request_error", 401),  # the code decides first
        ("no such model", "model_not_found", "invalid_request_error", 404),
        ("too long", None, "invalid_request_error", 400),
        ("Overloaded", None, "overloaded_error", 529),
        ("This model's maximum context length is 8192 tokens", None, None, 400),
        ("flagged by the content filter", None, None, 400),
        ("it broke", None, None, 500),
    ],
)
def test_implied_status_reads_the_code_then_the_type_then_the_wording(
    message, code, error_type, status
):
    assert implied_status(message, code, error_type) == status


def test_an_error_frame_is_the_error_its_type_says():
    provider = Provider(ProviderConfig(name="p", base_url="http://127.0.0.1:9/v1"))
    frame = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    with pytest.raises(UpstreamRateLimited) as limited:
        provider.transform_stream_event(Operation.CHAT, frame)
    assert limited.value.upstream_status == 429


def test_stream_error_is_worded_as_mid_stream():
    error = stream_error(UpstreamServerError, "", provider="p", status=500)
    assert error.message == "upstream 'p' failed mid-stream: no reason given"
    assert error.upstream_status == 500


class _Frames(Provider):
    """Raises what it is given, to see which frames count as errors."""

    def get_stream_error(self, payload: dict[str, Any]) -> UpstreamError:
        return UpstreamServerError(f"frame {sorted(payload)}", provider=self.name)


def _frames() -> _Frames:
    return _Frames(ProviderConfig(name="f", base_url="http://127.0.0.1:9/v1"))


def test_parse_stream_event_fills_in_what_chunks_carry():
    chunk = parse_stream_event(_frames(), Operation.CHAT, b'{"choices":[{"index":0}]}')
    assert chunk["choices"] == [{"index": 0, "finish_reason": None, "delta": {}}]


def test_parse_stream_event_takes_a_test_for_error_frames():
    provider = _frames()
    flat = b'{"object":"error","message":"overloaded"}'
    assert parse_stream_event(provider, Operation.CHAT, flat)["object"] == "error"
    with pytest.raises(UpstreamServerError, match="frame"):
        parse_stream_event(
            provider,
            Operation.CHAT,
            flat,
            is_error=lambda c: is_error_frame(c) or c.get("object") == "error",
        )
    with pytest.raises(UpstreamServerError):  # the default test, as the base method has it
        provider.transform_stream_event(Operation.CHAT, b'{"error":{"message":"x"}}')
    with pytest.raises(UpstreamServerError):  # an SSE event named `error`, whatever it holds
        parse_stream_event(provider, Operation.CHAT, b"{}", "error")
    with pytest.raises(MalformedResponse, match="not an object"):
        parse_stream_event(provider, Operation.CHAT, b"[1]")


@pytest.mark.parametrize(
    ("value", "count"), [("7", 7), ("7.0", 7), (" 7, 7;w=60", 7), ("many", None), (None, None)]
)
def test_parse_int_header(value, count):
    assert parse_int_header(value) == count


def test_rate_limit_headers_without_a_hint_are_passed_over_and_with_one_are_read():
    assert parse_rate_limit_headers({"content-type": "application/json", "x-id": "1"}) is None
    info = parse_rate_limit_headers(httpx.Headers({"Retry-After-Ms": "1500"}))
    assert info is not None and info.retry_after == 1.5
    info = parse_rate_limit_headers(httpx.Headers({"LLM_Provider-Retry-After": "3"}))
    assert info is not None and info.retry_after == 3
