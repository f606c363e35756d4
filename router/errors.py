"""The router's one error tree, rendered as the OpenAI error envelope in one place.

    RouterError                      anything a client can be told
    ├── ClientError                  the request itself is wrong (no retry, no fallback)
    │   ├── InvalidRequest           400
    │   ├── AuthenticationFailed     401  unknown or missing client key
    │   ├── PermissionDenied         403  model not allowed for this key
    │   ├── NotFound                 404  unknown model or route
    │   ├── MethodNotAllowed         405
    │   ├── RequestTimeout           408  the client sent its request too slowly
    │   ├── PayloadTooLarge          413
    │   ├── HeadersTooLarge          431  too many or too large request headers
    │   ├── RateLimited              429  one of the router's own policies said no
    │   └── ClientDisconnected       499  the client left; its upstream request was cancelled
    ├── InternalError                500  a bug in the router; its traceback is logged
    ├── ServiceUnavailable           503  no target can take the request now
    └── UpstreamError                a provider failed; `kind` drives retry and fallback
        ├── UpstreamRateLimited      429  (retry_after from the provider)
        ├── InsufficientQuota        429  balance or quota exhausted: move on, never retry
        ├── UpstreamAuthError        401  the router's provider credentials were refused
        ├── UpstreamPermissionError  403
        ├── ContextLengthExceeded    400
        ├── ContentPolicyViolation   400
        ├── UpstreamBadRequest       400  the provider's reason is passed on
        │   └── RegenerationDiffers  400  a regenerated stream departed from the text sent
        ├── UpstreamNotFound         404
        ├── UpstreamServerError      502
        │   └── UpstreamUnavailable  503  the upstream said it is overloaded or down
        ├── UpstreamConnectionError  502
        ├── UpstreamTimeout          504
        └── MalformedResponse        502
            └── PluginError          502  a provider plugin's own code raised (contained)

Retry and fallback decisions read `kind`, never the message text.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson


class ErrorKind(enum.Enum):
    """What went wrong, as far as routing decisions care."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    INSUFFICIENT_QUOTA = "insufficient_quota"
    CONTEXT_LENGTH = "context_length"
    CONTENT_POLICY = "content_policy"
    SERVER = "server"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    MALFORMED = "malformed"
    UNAVAILABLE = "unavailable"


class RouterError(Exception):
    """An error the client sees as an OpenAI error envelope with `status`."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None
    kind: ErrorKind = ErrorKind.SERVER

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


class ClientError(RouterError):
    """The request is wrong; trying elsewhere would not help."""

    status = 400
    type = "invalid_request_error"
    kind = ErrorKind.INVALID_REQUEST


class InvalidRequest(ClientError):
    status = 400


class AuthenticationFailed(ClientError):
    status = 401
    code = "invalid_api_key"
    kind = ErrorKind.AUTHENTICATION


class PermissionDenied(ClientError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"
    kind = ErrorKind.PERMISSION


class NotFound(ClientError):
    status = 404
    code = "model_not_found"
    kind = ErrorKind.NOT_FOUND


class MethodNotAllowed(ClientError):
    status = 405
    code = "method_not_allowed"


class RequestTimeout(ClientError):
    status = 408
    code = "request_timeout"


class PayloadTooLarge(ClientError):
    status = 413
    code = "request_too_large"


class HeadersTooLarge(ClientError):
    status = 431
    code = "request_header_fields_too_large"


class RateLimited(ClientError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    kind = ErrorKind.RATE_LIMITED


class BudgetExceeded(RateLimited):
    """A spend budget cannot pay for the request (`router.spend.budget_admission`)."""

    code = "budget_exceeded"


class ClientDisconnected(ClientError):
    """The client went away before the answer; nobody reads this, but the log does."""

    status = 499
    code = "client_closed_request"


class InternalError(RouterError):
    """What the client is told when the router itself failed (an exception it did not expect)."""

    status = 500
    code = "internal_error"


class ServiceUnavailable(RouterError):
    status = 503
    type = "server_error"
    code = "service_unavailable"
    kind = ErrorKind.UNAVAILABLE


class UpstreamError(RouterError):
    """A provider failed. `retry_after` is in seconds when the provider said so."""

    status = 502
    type = "upstream_error"
    code: str | None = "upstream_error"
    kind = ErrorKind.SERVER
    #: The same request to the same target would fail the same way, whatever the upstream
    #: does: a `retry` step then moves on to the next target instead.
    deterministic: bool = False

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        upstream_status: int | None = None,
        provider: str | None = None,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, status=status, headers=headers)
        self.retry_after = retry_after
        self.upstream_status = upstream_status
        self.provider = provider


class UpstreamRateLimited(UpstreamError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    kind = ErrorKind.RATE_LIMITED


class InsufficientQuota(UpstreamError):
    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"
    kind = ErrorKind.INSUFFICIENT_QUOTA


class UpstreamAuthError(UpstreamError):
    status = 401
    type = "authentication_error"
    code = "upstream_authentication_failed"
    kind = ErrorKind.AUTHENTICATION


class UpstreamPermissionError(UpstreamError):
    status = 403
    type = "permission_error"
    code = "upstream_permission_denied"
    kind = ErrorKind.PERMISSION


class ContextLengthExceeded(UpstreamError):
    status = 400
    type = "invalid_request_error"
    code = "context_length_exceeded"
    kind = ErrorKind.CONTEXT_LENGTH


class ContentPolicyViolation(UpstreamError):
    status = 400
    type = "invalid_request_error"
    code = "content_policy_violation"
    kind = ErrorKind.CONTENT_POLICY


class UpstreamBadRequest(UpstreamError):
    status = 400
    type = "invalid_request_error"
    code: str | None = None
    kind = ErrorKind.INVALID_REQUEST


class RegenerationDiffers(UpstreamBadRequest):
    """A stream asked for again (`stream_recovery: regenerate`) is not the answer the client
    was receiving: it is dropped, and the client gets the original failure, not this."""

    code = "regenerated_answer_differs"


class UpstreamNotFound(UpstreamError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"
    kind = ErrorKind.NOT_FOUND


class UpstreamServerError(UpstreamError):
    status = 502
    type = "server_error"
    code = "upstream_server_error"
    kind = ErrorKind.SERVER


class UpstreamUnavailable(UpstreamServerError):
    status = 503
    code = "upstream_unavailable"


class UpstreamConnectionError(UpstreamError):
    status = 502
    type = "server_error"
    code = "upstream_connection_error"
    kind = ErrorKind.CONNECTION


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout_error"
    code = "upstream_timeout"
    kind = ErrorKind.TIMEOUT


class MalformedResponse(UpstreamError):
    status = 502
    type = "server_error"
    code = "malformed_upstream_response"
    kind = ErrorKind.MALFORMED


class PluginError(MalformedResponse):
    """A provider plugin's own code raised something that is not a router error: a bug in
    the plugin, contained where the core calls it (see `router.upstream.plugin_calls`).
    `stage` names the provider method. A request the plugin failed to build was never sent
    and would fail the same way on a retry: it is `deterministic`."""

    code = "provider_plugin_error"

    def __init__(self, message: str, *, provider: str, stage: str) -> None:
        super().__init__(message, provider=provider)
        self.stage = stage
        self.deterministic = stage == "transform_request"
