"""The router's error tree as Anthropic's error bodies and statuses, as the SDK reads them."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from router import errors
from router.translate import anthropic_error, anthropic_error_frame

INVALID = "invalid_request_error"
CASES = [
    (errors.InvalidRequest("bad", param="x"), 400, INVALID, anthropic.BadRequestError),
    (errors.ContextLengthExceeded("too long"), 400, INVALID, anthropic.BadRequestError),
    (errors.ContentPolicyViolation("no"), 400, INVALID, anthropic.BadRequestError),
    (errors.UpstreamBadRequest("bad"), 400, INVALID, anthropic.BadRequestError),
    (errors.RegenerationDiffers("other"), 400, INVALID, anthropic.BadRequestError),
    (errors.AuthenticationFailed("x"), 401, "authentication_error", anthropic.AuthenticationError),
    (errors.UpstreamAuthError("key"), 401, "authentication_error", anthropic.AuthenticationError),
    (errors.PermissionDenied("no"), 403, "permission_error", anthropic.PermissionDeniedError),
    (errors.UpstreamPermissionError(""), 403, "permission_error", anthropic.PermissionDeniedError),
    (errors.NotFound("where"), 404, "not_found_error", anthropic.NotFoundError),
    (errors.UpstreamNotFound("where"), 404, "not_found_error", anthropic.NotFoundError),
    (errors.MethodNotAllowed("get"), 405, INVALID, anthropic.APIStatusError),
    (errors.RequestTimeout("slow body"), 408, INVALID, anthropic.APIStatusError),
    (errors.HeadersTooLarge("big headers"), 431, INVALID, anthropic.APIStatusError),
    (errors.PayloadTooLarge("big"), 413, "request_too_large", anthropic.ContentTooLargeError),
    (errors.RateLimited("slow"), 429, "rate_limit_error", anthropic.RateLimitError),
    (errors.UpstreamRateLimited("slow"), 429, "rate_limit_error", anthropic.RateLimitError),
    (errors.BudgetExceeded("spent"), 429, "rate_limit_error", anthropic.RateLimitError),
    (errors.InsufficientQuota("broke"), 429, "rate_limit_error", anthropic.RateLimitError),
    (errors.InternalError("bug"), 500, "api_error", anthropic.InternalServerError),
    (errors.UpstreamServerError("boom"), 500, "api_error", anthropic.InternalServerError),
    (errors.UpstreamConnectionError("gone"), 500, "api_error", anthropic.InternalServerError),
    (errors.MalformedResponse("junk"), 500, "api_error", anthropic.InternalServerError),
    (
        errors.PluginError("bug", provider="p", stage="x"),
        500,
        "api_error",
        anthropic.InternalServerError,
    ),
    (errors.UpstreamTimeout("slow"), 504, "timeout_error", anthropic.GatewayTimeoutError),
    (errors.ServiceUnavailable("busy"), 529, "overloaded_error", anthropic.OverloadedError),
    (errors.UpstreamUnavailable("busy"), 529, "overloaded_error", anthropic.OverloadedError),
]  # fmt: skip


@pytest.mark.parametrize(("error", "status", "kind", "raised"), CASES)
def test_error_bodies_and_what_the_sdk_raises(
    error: errors.RouterError, status: int, kind: str, raised: type, anthropic_client: Any
) -> None:
    got_status, body = anthropic_error(error)
    assert (got_status, body) == (
        status,
        {"type": "error", "error": {"type": kind, "message": error.message}},
    )
    client = anthropic_client(body, status=status)
    with pytest.raises(raised) as caught:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == status
    assert caught.value.body == body


def test_every_error_class_is_mapped() -> None:
    """A new class in the router's tree must land somewhere on Anthropic's set."""
    mapped = {type(error) for error, *_ in CASES} | {errors.ClientDisconnected}
    seen, todo = set(), [errors.RouterError]
    while todo:
        cls = todo.pop()
        seen.add(cls)
        todo += cls.__subclasses__()
    abstract = {errors.RouterError, errors.ClientError, errors.UpstreamError}
    assert seen - abstract <= mapped


def test_the_stream_error_frame() -> None:
    frame = anthropic_error_frame(errors.UpstreamUnavailable("Overloaded"))
    assert frame == (
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
