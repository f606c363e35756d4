"""Sort a LiteLLM proxy's errors into the router's error tree.

LiteLLM wraps every failure in `{"error": {"message", "type", "param", "code"}}` with `code`
the status as a string, `param` sometimes the string "None", and a message prefixed with the
exception class (`litellm.RateLimitError: ...`). That class is the most precise signal it
gives, so it is read first; the `type`, the status and the core's message markers follow.
FastAPI's own 404/405 `{"detail": ...}` bodies mean the router's target is wrong, not the
client's request. Messages may echo the proxy key or fragments of it (`Received API Key =
sk-...abcd`, `Key Hash (Token) =...`): the core's redaction
(`router.observability.redaction`) masks those for every provider, before anything logs or
shows the error.
"""

from __future__ import annotations

import re
from typing import Any

from router.spec import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    InsufficientQuota,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamPermissionError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_class,
    upstream_error,
)

#: `litellm.<ExceptionClass>` -> router error class (litellm/exceptions.py names).
EXCEPTION_CLASSES: dict[str, type[UpstreamError]] = {
    "ContextWindowExceededError": ContextLengthExceeded,
    "ContentPolicyViolationError": ContentPolicyViolation,
    "RateLimitError": UpstreamRateLimited,
    "AuthenticationError": UpstreamAuthError,
    "PermissionDeniedError": UpstreamPermissionError,
    "NotFoundError": UpstreamNotFound,
    "BadRequestError": UpstreamBadRequest,
    "UnprocessableEntityError": UpstreamBadRequest,
    "UnsupportedParamsError": UpstreamBadRequest,
    "InvalidRequestError": UpstreamBadRequest,
    "JSONSchemaValidationError": UpstreamBadRequest,
    "BudgetExceededError": InsufficientQuota,
    "Timeout": UpstreamTimeout,
    "APIConnectionError": UpstreamConnectionError,
    "InternalServerError": UpstreamServerError,
    "ServiceUnavailableError": UpstreamUnavailable,
    "BadGatewayError": UpstreamServerError,
    "APIError": UpstreamServerError,
    "APIResponseValidationError": UpstreamServerError,
}
#: LiteLLM's error `type` values that say more than the status does.
ERROR_TYPES: dict[str, type[UpstreamError]] = {
    "throttling_error": UpstreamRateLimited,
    "auth_error": UpstreamAuthError,
    "authentication_error": UpstreamAuthError,
    # The proxy cannot check any key without its database: the router's endpoint is broken,
    # the client's request is fine, so another target should get it.
    "no_db_connection": UpstreamAuthError,
    "budget_exceeded": InsufficientQuota,
}

#: LiteLLM's own subclasses of its exceptions (litellm/exceptions.py): when a message
#: names a class and its parent (`litellm.BadRequestError: litellm.ContentPolicyViolationError:
#: ...`, in either order, each class adding its prefix again), the subclass is the finding.
PARENTS: dict[str, str] = {
    "ContextWindowExceededError": "BadRequestError",
    "ContentPolicyViolationError": "BadRequestError",
    "UnsupportedParamsError": "BadRequestError",
    "ImageFetchError": "BadRequestError",
    "RejectedRequestError": "BadRequestError",
    "JSONSchemaValidationError": "APIError",
}

_EXCEPTION = re.compile(r"litellm\.(\w+)")
_NO_DEPLOYMENT = ("no healthy deployment available", "no deployments available")
_INVALID_MODEL = "invalid model name passed in model="
# Tails LiteLLM appends that describe its own routing, not the failure.
_TAILS = ("\nmodel=", "\n\nLiteLLM: model group", "Received Model Group=", "\nAvailable Model")


def clean_message(message: str) -> str:
    """LiteLLM's message without its routing epilogue."""
    for tail in _TAILS:
        cut = message.find(tail)
        if cut > 0:
            message = message[:cut]
    return message.strip()


def error_fields(payload: Any) -> tuple[str, str | None, str | None, str | None]:
    """(message, code, type, param) of a LiteLLM error body or stream frame, parsed JSON."""
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            param = err.get("param")
            return (
                str(err.get("message") or ""),
                None if err.get("code") is None else str(err["code"]),
                None if err.get("type") is None else str(err["type"]),
                param if isinstance(param, str) and param != "None" else None,
            )
        if isinstance(err, str):
            return err, None, None, None
        detail = payload.get("detail")
        if detail is not None:
            return (detail if isinstance(detail, str) else str(detail)), None, "detail", None
    if isinstance(payload, str):
        return payload, None, None, None
    return "", None, None, None


def most_specific(names: list[str]) -> str | None:
    """Of the LiteLLM exception classes a message names, the one deepest in LiteLLM's
    hierarchy (the first named among equals); None if it names none we know."""
    known = [name for name in names if name in EXCEPTION_CLASSES]
    return max(known, key=lambda name: name in PARENTS, default=None)


def _error_class(status: int, message: str, error_type: str | None) -> type[UpstreamError] | None:
    """The class LiteLLM's own words name, or None to let the core decide from the status."""
    lowered = message.lower()
    if any(marker in lowered for marker in _NO_DEPLOYMENT):
        return UpstreamRateLimited
    if error_type == "detail" and status in (404, 405):
        return UpstreamNotFound  # FastAPI: the path or method is wrong, i.e. our base_url
    if _INVALID_MODEL in lowered:
        return UpstreamNotFound  # the target's model is not on this proxy
    named = most_specific(_EXCEPTION.findall(message))
    if named is not None:
        return EXCEPTION_CLASSES[named]
    if error_type in ERROR_TYPES:
        return ERROR_TYPES[error_type]
    if "budget has been exceeded" in lowered:
        return InsufficientQuota
    return None


def litellm_error(
    status: int,
    payload: Any,
    *,
    retry_after: float | None = None,
    provider: str | None = None,
) -> UpstreamError:
    """The most specific router error for a LiteLLM error `payload` (parsed JSON or text)."""
    raw, code, error_type, param = error_fields(payload)
    message = clean_message(raw)
    cls = _error_class(status, raw, error_type) or error_class(
        status, message, code=code, error_type=None if error_type == "detail" else error_type
    )
    return upstream_error(
        cls, status, message, provider=provider, retry_after=retry_after, param=param
    )
