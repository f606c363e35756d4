"""What the Kong gateway in front of Telkom AI (Apilogy) says on its own behalf.

Kong answers some requests itself, before the model sees them: key-auth failures, the
rate-limiting plugin's 429, unmatched routes and its own crashes. Those bodies are
`{"message": ...}` (pretty-printed, with a `request_id` since Kong 3.x); everything else is
the model server's own error format and is handled by the core's generic extraction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import orjson

from router.spec import RateLimitInfo, parse_int_header, parse_rate_limit_headers

NO_API_KEY = "No API key found in request"
INVALID_CREDENTIALS = "Invalid authentication credentials"
DUPLICATE_API_KEY = "Duplicate API key found"
RATE_LIMITED = "API rate limit exceeded"
NO_ROUTE = "no Route matched with those values"
UNEXPECTED = "An unexpected error occurred"

#: Key-auth refusals: a 401 since Kong 1.0, a 403 in Kong 0.x (Kong PR #4238).
AUTH_MESSAGES = frozenset({NO_API_KEY, INVALID_CREDENTIALS, DUPLICATE_API_KEY})

_KONG_KEYS = frozenset({"message", "request_id"})

# Kong's rate-limiting plugin counts in fixed windows aligned to the epoch, so a window of
# a period ends at the next multiple of its length. Months and years are calendar-aligned.
_PERIODS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400))


def kong_message(body: bytes) -> str | None:
    """The message of a body Kong generated itself, or None for any other body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not data or not data.keys() <= _KONG_KEYS:
        return None
    message = data.get("message")
    return message if isinstance(message, str) else None


def _period_limits(
    headers: Mapping[str, str], now: float
) -> tuple[int | None, int | None, float | None]:
    """(limit, remaining, reset) of the tightest `X-RateLimit-*-<Period>` pair.

    Kong sends one pair per configured window (say 7 a minute and 100 an hour). The one that
    matters is an exhausted window, the longest if several are; else the one with least left.
    """
    best: tuple[int | None, int, float | None] | None = None
    for period, seconds in _PERIODS:
        remaining = parse_int_header(headers.get(f"x-ratelimit-remaining-{period}"))
        if remaining is None:
            continue
        limit = parse_int_header(headers.get(f"x-ratelimit-limit-{period}"))
        reset = seconds - (now % seconds) if remaining == 0 else None
        if best is None or remaining == 0 or (best[1] != 0 and remaining < best[1]):
            best = (limit, remaining, reset)
    if best is None:
        return None, None, None
    return best


def parse_kong_rate_limit(
    headers: Mapping[str, str], *, now: float | None = None
) -> RateLimitInfo | None:
    """Kong's rate-limit headers: `Retry-After`, `RateLimit-*` and `X-RateLimit-*-<Period>`.

    `RateLimit-*` (with Kong's own reset) wins; without it (hidden, or an older Kong) the
    per-period pairs say how much is left, and the window's end is when it refills.
    """
    info = parse_rate_limit_headers(headers)
    if headers.get("ratelimit-remaining") is not None:
        return info
    limit, remaining, reset = _period_limits(headers, time.time() if now is None else now)
    if remaining is None:
        return info
    return RateLimitInfo(
        limit_requests=limit,
        remaining_requests=remaining,
        reset_requests=reset,
        retry_after=info.retry_after if info else None,
    )
