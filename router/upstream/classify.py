"""Sort an upstream failure into the error tree, from its status and what its body says.

Providers call `classify_error` once they have pulled a message (and maybe a code) out of
their own error format; the result's class is all that routing decisions look at. A provider
that knows better than the status for some answers picks the class itself and words the
error with `upstream_error` (or `stream_error` mid-stream), like every other provider's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from router import errors
from router.upstream.sse import BOM

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "contextwindowexceeded",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "reduce the length",
)
_POLICY_MARKERS = (
    "content_policy",
    "content policy",
    "content_filter",
    "content filter",
    "content management policy",
    "content safety",  # Telkom: "... violates our content safety policy"
    "safety policy",
    "safety system",
    "flagged",
    "firewall",
)
_QUOTA_MARKERS = (
    "insufficient_quota",
    "insufficient balance",
    "insufficient_balance",
    "exceeded your current quota",
    "billing",
    "out of credit",
)


def _has(text: str, markers: tuple[str, ...]) -> bool:
    return any(marker in text for marker in markers)


def error_class(
    status: int, message: str = "", *, code: str | None = None, error_type: str | None = None
) -> type[errors.UpstreamError]:
    """The most specific `UpstreamError` class for an upstream `status` and what its body
    says (the usual wording of quota, context-length and content-policy failures)."""
    text = " ".join(str(part) for part in (message, code, error_type) if part).lower()
    if status == 402 or _has(text, _QUOTA_MARKERS):
        return errors.InsufficientQuota
    if _has(text, _CONTEXT_MARKERS) and status < 500:
        return errors.ContextLengthExceeded
    if _has(text, _POLICY_MARKERS) and status < 500:
        return errors.ContentPolicyViolation
    if status == 429:
        return errors.UpstreamRateLimited
    if status == 401:
        return errors.UpstreamAuthError
    if status == 403:
        return errors.UpstreamPermissionError
    if status == 404:
        return errors.UpstreamNotFound
    if status in (408, 504):
        return errors.UpstreamTimeout
    if 400 <= status < 500:
        return errors.UpstreamBadRequest
    if status in (503, 529):
        return errors.UpstreamUnavailable
    return errors.UpstreamServerError


# The status an error object's `code` or `type` stands for in OpenAI's and Anthropic's APIs,
# for an error that arrives without a status of its own (`implied_status`).
_NAMED_STATUS = {
    "invalid_api_key": 401,
    "authentication_error": 401,
    "permission_error": 403,
    "model_not_found": 404,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "content_filter": 400,
    "api_error": 500,
    "server_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def implied_status(message: str, code: str | None, error_type: str | None) -> int:
    """The HTTP status an error object stands for where no response status says it: an error
    frame in a stream, or an error in a 2xx answer. A status in its `code` (proxies such as
    LiteLLM put it there), else what its `code` or `type` means in OpenAI's and Anthropic's
    APIs, else 400 for a content-policy or context-length failure (which must not pass for
    a server error that could be retried or continued elsewhere), else 500."""
    if code is not None and code.isdigit() and 400 <= int(code) < 600:
        return int(code)
    for name in (code, error_type):
        status = _NAMED_STATUS.get(name or "")
        if status is not None:
            return status
    probe = error_class(400, message, code=code, error_type=error_type)
    if probe in (errors.ContentPolicyViolation, errors.ContextLengthExceeded):
        return 400
    return 500


# The classes whose errors name the request field at fault: the others' `param` is dropped.
_NAMES_A_FIELD = (errors.UpstreamBadRequest, errors.ContextLengthExceeded)


def upstream_error(
    cls: type[errors.UpstreamError],
    status: int,
    message: str,
    *,
    provider: str | None,
    retry_after: float | None = None,
    code: str | None = None,
    param: str | None = None,
) -> errors.UpstreamError:
    """An error of class `cls` for an upstream's non-2xx answer, worded like every
    provider's: `upstream 'acme' returned 429: <message>`. `code` replaces the class's own
    error code; `param` is kept only by the classes that name a request field."""
    label = f"upstream '{provider}'" if provider else "upstream"
    return cls(
        f"{label} returned {status}: {message}" if message else f"{label} returned {status}",
        retry_after=retry_after,
        upstream_status=status,
        provider=provider,
        param=param if cls in _NAMES_A_FIELD else None,
        code=code,
    )


def stream_error(
    cls: type[errors.UpstreamError],
    message: str,
    *,
    provider: str | None,
    status: int | None = None,
    code: str | None = None,
) -> errors.UpstreamError:
    """An error of class `cls` for a failure an upstream reported after its answer began
    (an error frame in a stream), worded like every provider's:
    `upstream 'acme' failed mid-stream: <message>`. `status` is the one the frame stands
    for, if it says."""
    label = f"upstream '{provider}'" if provider else "upstream"
    return cls(
        f"{label} failed mid-stream: {message or 'no reason given'}",
        upstream_status=status,
        provider=provider,
        code=code,
    )


def classify_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    error_type: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
    provider: str | None = None,
) -> errors.UpstreamError:
    """The most specific `UpstreamError` for an upstream `status` and its message:
    `error_class` picks the class, `upstream_error` words it."""
    cls = error_class(status, message, code=code, error_type=error_type)
    return upstream_error(
        cls, status, message, provider=provider, retry_after=retry_after, param=param
    )


def _detail_message(detail: Any) -> tuple[str, str | None]:
    """FastAPI `detail`: a string, or a list of validation errors naming the field."""
    if isinstance(detail, str):
        return detail, None
    if isinstance(detail, list) and detail:
        parts, first_field = [], None
        for item in detail:
            if not isinstance(item, Mapping):
                parts.append(str(item))
                continue
            loc = [str(p) for p in item.get("loc", []) if p != "body"]
            field = ".".join(loc) or None
            first_field = first_field or field
            msg = item.get("msg", "invalid")
            parts.append(f"{field}: {msg}" if field else str(msg))
        return "; ".join(parts), first_field
    return str(detail), None


def extract_error(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    """(message, code, type, param) from any error body our upstreams produce.

    Understands the OpenAI envelope, flat `{"error": "..."}`, Kong's `{"message": ...}`,
    FastAPI's `{"detail": ...}`, Telnyx's `{"errors": [...]}` and plain text.
    """
    body = body.removeprefix(BOM)  # (as `UpstreamResponse.json` ignores it)
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return text[:500], None, None, None
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping):
            code = err.get("code")
            param = err.get("param")
            return (
                str(err.get("message") or ""),
                str(code) if code is not None else None,
                str(err.get("type")) if err.get("type") is not None else None,
                param if isinstance(param, str) and param != "None" else None,
            )
        if isinstance(err, str):
            return err, None, None, None
        errs = data.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], Mapping):
            first = errs[0]
            title, detail = first.get("title"), first.get("detail")
            message = ": ".join(str(p) for p in (title, detail) if p)
            source = first.get("source") or {}
            param = source.get("parameter") or source.get("pointer")
            code = first.get("code")
            return message, str(code) if code is not None else None, None, param
        if "detail" in data:
            message, field = _detail_message(data["detail"])
            return message, None, None, field
        if "message" in data:
            return str(data["message"]), None, None, None
    if isinstance(data, str):
        return data, None, None, None
    return body.decode("utf-8", "replace")[:500], None, None, None
