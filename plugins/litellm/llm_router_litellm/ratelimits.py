"""LiteLLM's rate-limit headers, on top of the dialects the core already reads.

The proxy re-exposes the provider's `x-ratelimit-*` headers and echoes all of them as
`llm_provider-x-ratelimit-*`; its own key limiter names them per descriptor
(`x-ratelimit-api_key-remaining-requests`); a deployment's `rpm` counter goes negative
instead of stopping at zero.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from router.spec import RateLimitInfo, parse_int_header, parse_rate_limit_headers, parse_seconds

_DESCRIPTOR = re.compile(r"^x-ratelimit-([a-z_]+)-(limit|remaining)-(requests|tokens)$")
_ECHO = "llm_provider-"


def _tightest(headers: Mapping[str, str]) -> dict[str, int]:
    """`{limit,remaining}_{requests,tokens}` from per-descriptor headers: the lowest wins."""
    found: dict[str, int] = {}
    for name, value in headers.items():
        match = _DESCRIPTOR.match(name.lower())
        number = parse_int_header(value) if match else None
        if match is None or number is None:
            continue
        field = f"{match.group(2)}_{match.group(3)}"
        found[field] = min(found.get(field, number), number)
    return found


def rate_limit_info(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """What the proxy said about limits, or None when it said nothing."""
    info = parse_rate_limit_headers(headers) or RateLimitInfo()
    updates: dict[str, float | int] = {}
    for field, header in (
        ("limit_tokens", "x-ratelimit-limit-tokens"),
        ("remaining_tokens", "x-ratelimit-remaining-tokens"),
    ):
        if getattr(info, field) is None:
            value = parse_int_header(headers.get(_ECHO + header))
            if value is not None:
                updates[field] = value
    if info.reset_tokens is None:
        reset = parse_seconds(headers.get(_ECHO + "x-ratelimit-reset-tokens"))
        if reset is not None:
            updates["reset_tokens"] = reset
    if info.remaining_requests is None and info.remaining_tokens is None:
        updates.update(_tightest(headers))
    if updates:
        info = dataclasses.replace(info, **updates)  # type: ignore[arg-type]
    for field in ("remaining_requests", "remaining_tokens"):
        value = getattr(info, field)
        if value is not None and value < 0:  # an over-used deployment counter: none left
            info = dataclasses.replace(info, **{field: 0})
    return None if info == RateLimitInfo() else info
