"""Every rescue attempt is an attempt: a continuation passes its provider's quota and its
breaker like the first try, and an outage costs what the docs say, with and without a
breaker. Through `llm-switchyard serve` with a fault-injecting fake upstream."""

from __future__ import annotations

import time
from typing import Any

import openai
import orjson
import pytest

from router.testing import (
    FakeUpstream,
    chat_completion,
    has_prefill,
    json_reply,
    word_stream,
    words,
)

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
C = "/c/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
CONFIG = """
server: {{auth: none, watch_config: false}}
rate_limits:
  telkom: {{requests_per_minute: 1, on_limit: fallback}}
providers:
  a: {{plugin: openai, base_url: "{url}/a/v1"}}
  b: {{plugin: openai, base_url: "{url}/b/v1", rate_limits: [telkom]}}
  c: {{plugin: openai, base_url: "{url}/c/v1"}}
models:
  quota:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    stream_recovery: continue
  guarded:
    targets: [{{provider: a, model: ma}}, {{provider: c, model: mc}}]
    retries: {{attempts: 0}}
    breaker: {{consecutive_failures: 1, failure_rate: null, open_for: 30}}
    stream_recovery: continue
  unguarded:
    targets: [{{provider: a, model: ma}}, {{provider: c, model: mc}}]
    retries: {{attempts: 0}}
"""


def stream(client: openai.OpenAI, model: str, request_id: str) -> tuple[str, Any]:
    text, error = "", None
    try:
        for chunk in client.chat.completions.create(
            model=model,
            messages=MSGS,  # type: ignore[arg-type]
            stream=True,
            extra_headers={"x-request-id": request_id},
        ):
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
    except openai.APIError as exc:
        error = exc
    return text, error


def outcomes(router: Any, request_id: str) -> list[tuple[str, str]]:
    line = router.wait_for_line(lambda raw: request_id.encode() in raw and b'"request"' in raw)
    return [(a["target"], a["outcome"]) for a in orjson.loads(line)["attempts"]]


def test_a_continuation_counts_against_its_providers_quota(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    fake.set_default(A, word_stream(words(6), cut_after=3))
    fake.set_default(B, word_stream(words(3, first=4), model="mb"))
    text, error = stream(client, "quota", "quota-1")
    assert error is None and text == "".join(words(6))
    assert outcomes(router, "quota-1")[1] == ("b/mb", "continued")
    # The quota (1 a minute) is spent: the next continuation is refused, never sent.
    text, error = stream(client, "quota", "quota-2")
    assert text == "".join(words(3))
    assert isinstance(error, openai.APIError) and "upstream 'a'" in error.message
    assert outcomes(router, "quota-2")[1] == ("b/mb", "continue_quota_fallback")
    assert len(fake.received(B)) == 1


def test_a_continuation_skips_a_target_whose_breaker_is_open(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    # c fails once (a 503 before its first byte): its breaker opens for 30 s (a's 429 is
    # neutral to a breaker: a stays closed).
    fake.add(A, json_reply({"error": {"message": "slow down"}}, 429))
    fake.add(C, json_reply({"error": {"message": "down"}}, 503))
    with pytest.raises(openai.APIError):
        client.chat.completions.create(model="guarded", messages=MSGS)  # type: ignore[arg-type]
    fake.add(A, word_stream(words(6), cut_after=3))
    fake.set_default(C, word_stream(words(3, first=4), model="mc"))
    text, error = stream(client, "guarded", "guarded-1")
    assert text == "".join(words(3)) and isinstance(error, openai.APIError)
    assert not [r for r in fake.received(C) if has_prefill(r)]  # never sent: no attempt spent
    assert outcomes(router, "guarded-1") == [("a/ma", "ok_then_upstream_connection_error")]


def test_without_a_breaker_each_request_spends_one_attempt_on_a_target_that_is_down(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    fake.set_default(A, json_reply({"error": {"message": "down"}}, 503))
    fake.set_default(C, json_reply(chat_completion("from c", model="mc")))
    for i in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="unguarded",
            messages=MSGS,  # type: ignore[arg-type]
            extra_headers={"x-request-id": f"unguarded-{i}"},
        )
        assert raw.parse().choices[0].message.content == "from c"
        assert raw.headers["x-router-attempts"] == "2"
    assert len(fake.received(A)) == 3  # one failed attempt per request, every time
    started = time.monotonic()
    client.chat.completions.create(model="unguarded", messages=MSGS)  # type: ignore[arg-type]
    assert time.monotonic() - started < 5  # a quick refusal costs little; a timeout would not
