"""The answer's raw header pairs say exactly what the header dicts said."""

from __future__ import annotations

import asyncio

from router.config.policies import RateLimitBackendConfig
from router.http.responses import JsonAnswer, encoded
from router.limits.admission import Limiter, Ticket, rate_header_pairs, rate_headers
from router.limits.policies import Limit, Policy, PolicySet


def _ticket(limiter: Limiter, limits: tuple[Limit, ...], cost: int) -> Ticket:
    policy = Policy("p", "key:app", "reject", 0.0, False)
    pset = PolicySet((policy,), limits, counts_tokens=True, fail_closed=False)
    return asyncio.run(limiter.acquire(pset, cost, 60_000))


def test_rate_header_pairs_match_rate_headers() -> None:
    limiter = Limiter(RateLimitBackendConfig())
    wide = _ticket(
        limiter,
        (Limit("r", "a:r", 100, 60_000, 0), Limit("t", "a:t", 1000, 60_000, 0)),
        cost=40,
    )
    narrow = _ticket(
        limiter,
        (Limit("r", "b:r", 3, 1_000, 0), Limit("c", "b:c", 5, 0, 0)),
        cost=40,
    )
    pairs = rate_header_pairs([wide, narrow])
    expected = [(k.encode(), v.encode()) for k, v in rate_headers([wide, narrow]).items()]
    assert pairs == expected
    assert dict(pairs)[b"x-ratelimit-remaining-requests"] == b"2"  # the tighter one
    assert dict(pairs)[b"x-ratelimit-remaining-tokens"] == b"960"
    assert rate_header_pairs([]) == []


def test_json_answer_adds_length_and_type() -> None:
    answer = JsonAnswer(b'{"a":1}', [(b"x-request-id", b"r1")])
    assert answer.raw_headers == [
        (b"x-request-id", b"r1"),
        (b"content-length", b"7"),
        (b"content-type", b"application/json"),
    ]
    assert answer.headers["content-length"] == "7"
    assert encoded("model-a") is encoded("model-a")
