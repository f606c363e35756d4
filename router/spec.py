"""The one module provider plugins import: hook marker, Provider base, types, errors, and
the helpers the built-in behaviour is made of, so that a plugin changing one detail calls
them instead of copying the core:

    classify_error     status and message -> the most specific UpstreamError
    error_class        the same, the class only (to word the error yourself)
    upstream_error     an error of a given class, worded like every provider's
    stream_error       the same, for a failure reported mid-stream
    extract_error      (message, code, type, param) from the common error body shapes
    implied_status     the status an error without one stands for (a 2xx's, a frame's)
    parse_stream_event one SSE event as an OpenAI chunk, with a pluggable error-frame test
    is_error_frame     the OpenAI error-frame test it uses by default
    parse_rate_limit_headers, parse_seconds, parse_int_header   reading rate-limit headers

Everything here is public API: a test pins `__all__`, and names are only ever added.
(Test kits may also import `router.testing`, the public fakes and fixtures for tests.)
"""

from __future__ import annotations

import pluggy

import router.operations  # noqa: F401  (defines `Operation.IMAGES` and the other built-ins)
from router.errors import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    ErrorKind,
    InsufficientQuota,
    InvalidRequest,
    MalformedResponse,
    RouterError,
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
)
from router.types import Operation, Timeouts
from router.upstream.classify import (
    classify_error,
    error_class,
    extract_error,
    implied_status,
    stream_error,
    upstream_error,
)
from router.upstream.events import is_error_frame, parse_stream_event
from router.upstream.provider import (
    Provider,
    ProviderConfig,
    ProviderConfigError,
    ProviderSettings,
    UpstreamResponse,
)
from router.upstream.ratelimit_headers import (
    RateLimitInfo,
    parse_int_header,
    parse_rate_limit_headers,
    parse_seconds,
)

hookimpl = pluggy.HookimplMarker("llm_router")

__all__ = [
    "ContentPolicyViolation",
    "ContextLengthExceeded",
    "ErrorKind",
    "InsufficientQuota",
    "InvalidRequest",
    "MalformedResponse",
    "Operation",
    "Provider",
    "ProviderConfig",
    "ProviderConfigError",
    "ProviderSettings",
    "RateLimitInfo",
    "RouterError",
    "Timeouts",
    "UpstreamAuthError",
    "UpstreamBadRequest",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamNotFound",
    "UpstreamPermissionError",
    "UpstreamRateLimited",
    "UpstreamResponse",
    "UpstreamServerError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "classify_error",
    "error_class",
    "extract_error",
    "hookimpl",
    "implied_status",
    "is_error_frame",
    "parse_int_header",
    "parse_rate_limit_headers",
    "parse_seconds",
    "parse_stream_event",
    "stream_error",
    "upstream_error",
]
