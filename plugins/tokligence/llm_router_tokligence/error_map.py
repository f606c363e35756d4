"""Sort the Tokligence gateway's failures into the router's error tree.

The gateway speaks two error shapes: the open-source gateway's flat `{"error": "<string>"}`
and the OpenAI envelope its docs promise; chi's 404 and the rate limiter's 429 are plain text.
It answers 502 for *every* failure of the model provider behind it and puts that provider's
own error in the message (`openai: <msg> (type=<t>, code=<c>)` or `openai: http <status>:
<body>`), so the class comes from what is wrapped, not from the 502.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from router.spec import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    InsufficientQuota,
    RateLimitInfo,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamServerError,
    error_class,
    extract_error,
    stream_error,
    upstream_error,
)

_WRAPPED_TYPED = re.compile(
    r"^(?P<adapter>[\w.-]+): (?P<message>.*) \(type=(?P<type>[^,]*), code=(?P<code>[^)]*)\)$",
    re.DOTALL,
)
_WRAPPED_HTTP = re.compile(
    r"^(?P<adapter>[\w.-]+): http (?P<status>\d{3}): (?P<body>.*)$", re.DOTALL
)
_NONE = {"", "<nil>", "null", "none"}

# An upstream error's code or type, when that is all a wrapped message carries, as a status.
_STATUS_OF = {
    "invalid_api_key": 401,
    "authentication_error": 401,
    "insufficient_quota": 429,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "requests": 429,
    "tokens": 429,
    "permission_error": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "context_length_exceeded": 400,
    "content_policy_violation": 400,
    "content_filter": 400,
    "invalid_request_error": 400,
}
# What an upstream failure behind the gateway keeps of its own class; the rest is a server error.
_KEPT: tuple[type[UpstreamError], ...] = (
    UpstreamRateLimited,
    InsufficientQuota,
    UpstreamAuthError,
    ContextLengthExceeded,
    ContentPolicyViolation,
)
_HINTS = {
    "invalid token": " (the open-source gateway accepts only keys starting with `tok_`)",
    "404 page not found": " (check `base_url`: the gateway serves the OpenAI API under /v1; "
    "image generation and rerank exist only where the gateway enables them)",
}


def _clean(value: str | None) -> str | None:
    if value is None or value.strip().lower() in _NONE:
        return None
    return value.strip()


def _inner_status(code: str | None, error_type: str | None, default: int) -> int:
    for key in (code, error_type):
        if key and key in _STATUS_OF:
            return _STATUS_OF[key]
    if code and code.isdigit() and 400 <= int(code) < 600:
        return int(code)
    return default


def _behind_gateway(message: str, code: str | None, error_type: str | None) -> type[UpstreamError]:
    """The class of a model provider's failure the gateway passed on (wrapped or mid-stream)."""
    typed = _WRAPPED_TYPED.match(message)
    http = _WRAPPED_HTTP.match(message)
    status = 500
    if http:
        status = int(http["status"])
        message, code, error_type, _ = extract_error(http["body"].encode())
    elif typed:
        message = typed["message"]
        code, error_type = _clean(typed["code"]), _clean(typed["type"])
    status = _inner_status(code, error_type, status)
    cls = error_class(status, message, code=code, error_type=error_type)
    return cls if cls in _KEPT else UpstreamServerError


def map_error(
    provider: str, status: int, body: bytes, limits: RateLimitInfo | None
) -> UpstreamError:
    """The router error for one non-2xx answer of the gateway."""
    message, code, error_type, param = extract_error(body)
    retry_after = limits.wait_hint() if limits else None
    if status == 429 and retry_after is None and limits is not None:
        retry_after = limits.reset_requests  # the limiter's reset, even without remaining: 0
    text = f"{message}{_HINTS.get(message.strip(), '')}"
    cls: type[UpstreamError]
    error_code = None
    if status == 501:  # the gateway's adapter has no embeddings: another target may
        cls, error_code, retry_after = UpstreamNotFound, "embeddings_not_supported", None
    elif message.startswith("router: no adapter found"):
        cls, retry_after = UpstreamNotFound, None
    elif message.startswith("router: selected adapter does not support streaming"):
        cls, error_code, retry_after = UpstreamNotFound, "streaming_not_supported", None
    elif status >= 500 and status != 504:
        cls, param = _behind_gateway(message, code, error_type), None
    elif status == 403:  # on the OpenAI routes only the prompt/response firewall answers 403
        cls, retry_after = ContentPolicyViolation, None
    elif status == 404:
        cls, error_code, retry_after = UpstreamNotFound, "not_found", None
    else:
        cls = error_class(status, message, code=code, error_type=error_type)
    return upstream_error(
        cls,
        status,
        text,
        provider=provider,
        retry_after=retry_after,
        code=error_code,
        param=param,
    )


def map_stream_error(provider: str, payload: Mapping[str, Any]) -> UpstreamError:
    """The router error for a mid-stream frame such as `{"error": "stream error"}`."""
    err = payload.get("error")
    if isinstance(err, Mapping):
        message = str(err.get("message") or "")
        code = _clean(str(err["code"])) if err.get("code") is not None else None
        error_type = _clean(str(err["type"])) if err.get("type") is not None else None
    else:
        message, code, error_type = str(err or ""), None, None
    cls = _behind_gateway(message, code, error_type)
    return stream_error(cls, message, provider=provider)
