"""Read the rate-limit headers upstreams send, in all the dialects our providers speak.

OpenAI and LiteLLM: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` with resets as
durations (`1s`, `6m0s`, `120ms`). Telnyx: `x-ratelimit-{limit,remaining,reset}` (reset in
seconds). Tokligence: `X-RateLimit-Reset` as a unix timestamp. Kong (Telkom): `RateLimit-*`
and `X-RateLimit-*-Minute`. LiteLLM may pass `Retry-After` only as `llm_provider-retry-after`.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_EPOCH_THRESHOLD = 1_000_000_000  # larger numbers are timestamps, not durations
_PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What an upstream said about its limits. Resets and retry_after are seconds from now."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None
    retry_after: float | None = None

    @property
    def exhausted(self) -> bool:
        return self.remaining_requests == 0 or self.remaining_tokens == 0

    def wait_hint(self) -> float | None:
        """How long to stay away, if the upstream told us."""
        if self.retry_after is not None:
            return self.retry_after
        waits = []
        if self.remaining_requests == 0 and self.reset_requests is not None:
            waits.append(self.reset_requests)
        if self.remaining_tokens == 0 and self.reset_tokens is not None:
            waits.append(self.reset_tokens)
        return max(waits) if waits else None


def parse_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a header value: `12`, `1.5`, `6m0s`, `120ms`, an HTTP date or an epoch."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if number >= _EPOCH_THRESHOLD:
            number -= now if now is not None else time.time()
        return max(number, 0.0)
    parts = _DURATION_PART.findall(value)
    if parts and "".join(n + u for n, u in parts) == value.replace(" ", ""):
        return sum(float(n) * _UNITS[u] for n, u in parts)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (now if now is not None else time.time()), 0.0)


def parse_int_header(value: str | None) -> int | None:
    """A count from a header value: `7`, `7.0`, or the first of a list (`7, 7;w=60`)."""
    if value is None:
        return None
    try:
        return int(float(value.split(",")[0].strip()))
    except ValueError:
        return None


def _first(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None


def parse_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """Collect every rate-limit hint in `headers` (a case-insensitive mapping).

    Every header read here has `ratelimit` or `retry-after` in its name, so headers without
    one (most answers) are passed over with two substring searches instead of twenty
    look-ups (a case-insensitive regular expression costs more than both).
    """
    names = " ".join(headers).lower()
    if "ratelimit" not in names and "retry-after" not in names:
        return None
    retry_after = parse_seconds(_first(headers, "retry-after", "llm_provider-retry-after"))
    if retry_after is None:
        ms = _first(headers, "retry-after-ms", "llm_provider-retry-after-ms")
        if ms is not None:
            try:
                retry_after = max(float(ms) / 1000.0, 0.0)
            except ValueError:
                retry_after = None

    limit_requests = parse_int_header(
        _first(headers, "x-ratelimit-limit-requests", "llm_provider-x-ratelimit-limit-requests")
    )
    remaining_requests = parse_int_header(
        _first(
            headers,
            "x-ratelimit-remaining-requests",
            "llm_provider-x-ratelimit-remaining-requests",
        )
    )
    reset_requests = parse_seconds(
        _first(headers, "x-ratelimit-reset-requests", "llm_provider-x-ratelimit-reset-requests")
    )
    limit_tokens = parse_int_header(_first(headers, "x-ratelimit-limit-tokens"))
    remaining_tokens = parse_int_header(_first(headers, "x-ratelimit-remaining-tokens"))
    reset_tokens = parse_seconds(_first(headers, "x-ratelimit-reset-tokens"))

    if limit_requests is None and remaining_requests is None:
        # Telnyx, Tokligence (x-ratelimit-*) and Kong (ratelimit-*): request counts.
        limit_requests = parse_int_header(_first(headers, "x-ratelimit-limit", "ratelimit-limit"))
        remaining_requests = parse_int_header(
            _first(headers, "x-ratelimit-remaining", "ratelimit-remaining")
        )
        reset_requests = parse_seconds(_first(headers, "x-ratelimit-reset", "ratelimit-reset"))
    if limit_requests is None and remaining_requests is None:
        # Kong sends one pair per configured window; the binding one is the exhausted window
        # that refills last, or else the one with the least left.
        windows = []
        for period, seconds in _PERIOD_SECONDS.items():
            remaining = parse_int_header(headers.get(f"x-ratelimit-remaining-{period}"))
            if remaining is not None:
                limit = parse_int_header(headers.get(f"x-ratelimit-limit-{period}"))
                windows.append(
                    (
                        remaining != 0,
                        remaining if remaining else -seconds,
                        limit,
                        remaining,
                        seconds,
                    )
                )
        if windows:
            _, _, limit_requests, remaining_requests, seconds = min(windows)
            reset_requests = float(seconds) if remaining_requests == 0 else None

    info = RateLimitInfo(
        limit_requests=limit_requests,
        remaining_requests=remaining_requests,
        reset_requests=reset_requests,
        limit_tokens=limit_tokens,
        remaining_tokens=remaining_tokens,
        reset_tokens=reset_tokens,
        retry_after=retry_after,
    )
    if info == _EMPTY:
        return None
    return info


_EMPTY = RateLimitInfo()
