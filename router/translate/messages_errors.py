"""The router's errors as Anthropic's: `{"type": "error", "error": {"type", "message"}}`.

Anthropic's documented set, and what of the router's tree (`router.errors`) lands on each:

    400 invalid_request_error   InvalidRequest, ContextLengthExceeded, ContentPolicyViolation,
                                UpstreamBadRequest (and other 4xx: 405, 408, 431, 499 keep
                                their status)
    401 authentication_error    AuthenticationFailed, UpstreamAuthError
    403 permission_error        PermissionDenied, UpstreamPermissionError
    404 not_found_error         NotFound, UpstreamNotFound
    413 request_too_large       PayloadTooLarge
    429 rate_limit_error        RateLimited, BudgetExceeded, UpstreamRateLimited, InsufficientQuota
    500 api_error               InternalError, and the 502s: UpstreamServerError,
                                UpstreamConnectionError, MalformedResponse (PluginError too)
    504 timeout_error           UpstreamTimeout
    529 overloaded_error        ServiceUnavailable, UpstreamUnavailable (503 in the chat API)

The message is the router's own (it never carries secrets). Headers such as `Retry-After`
stay on the error (`error.headers`) for the caller to send.
"""

from __future__ import annotations

from typing import Any

from router.errors import RouterError
from router.translate.common import frame

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_status(error: RouterError) -> int:
    status = error.status
    if status == 503:
        return 529
    if status >= 500 and status != 504:
        return 500
    return status


def anthropic_error(error: RouterError) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of `error` as the Anthropic API reports errors."""
    status = anthropic_status(error)
    kind = _TYPES.get(status, "invalid_request_error")
    return status, {"type": "error", "error": {"type": kind, "message": error.message}}


def anthropic_error_frame(error: RouterError) -> bytes:
    """The `event: error` frame that ends a Messages stream which failed mid-way."""
    return frame(anthropic_error(error)[1])
