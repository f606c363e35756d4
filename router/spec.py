"""The one module provider plugins import: hook marker, Provider base, types and errors.

Everything here is public API: a test pins `__all__`, and names are only ever added.
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
from router.upstream.classify import classify_error, extract_error
from router.upstream.provider import (
    Provider,
    ProviderConfig,
    ProviderConfigError,
    ProviderSettings,
    UpstreamResponse,
)
from router.upstream.ratelimit_headers import RateLimitInfo, parse_rate_limit_headers, parse_seconds

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
    "extract_error",
    "hookimpl",
    "parse_rate_limit_headers",
    "parse_seconds",
]
