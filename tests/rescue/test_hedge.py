"""Hedged first tokens: a target that has not begun its answer in time is raced by the next
candidate; whichever begins first is served and the other is cancelled (its upstream sees
the connection close). Through `llm-switchyard serve` with the openai SDK."""

from __future__ import annotations

import time
from typing import Any

import openai
import orjson

from router.testing import (
    FakeUpstream,
    Reply,
    chat_completion,
    json_reply,
    word_stream,
    words,
)

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
SLOW = 20.0  # seconds the slow upstream would take to its first token
CONFIG = """
server: {{auth: none, watch_config: false}}
rate_limits:
  quota: {{requests_per_minute: 1, on_limit: fallback}}
providers:
  bq: {{plugin: openai, base_url: "{url}/b/v1", rate_limits: [quota]}}
  a: {{plugin: openai, base_url: "{url}/a/v1", timeouts: {{first_token: 60, total: 90}}}}
  b: {{plugin: openai, base_url: "{url}/b/v1", timeouts: {{first_token: 60, total: 90}}}}
models:
  hedged:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    retries: {{deadline: 90}}
    hedge: {{after: 2}}
  plain:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    retries: {{deadline: 90}}
  quota_hedged:
    targets: [{{provider: a, model: ma}}, {{provider: bq, model: mb}}]
    retries: {{deadline: 90}}
    hedge: {{after: 0.5}}
  learned:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    retries: {{deadline: 90}}
    hedge: {{after: 30, percentile: p90, floor: 0.3, min_samples: 3}}
"""


def access_line(router: Any, request_id: str) -> dict[str, Any]:
    line = router.wait_for_line(lambda raw: request_id.encode() in raw and b'"request"' in raw)
    return orjson.loads(line)  # type: ignore[no-any-return]


def wait_for_disconnect(fake: FakeUpstream, path: str) -> None:
    deadline = time.monotonic() + 10
    while path not in fake.disconnects:
        assert time.monotonic() < deadline, "the slow upstream never saw its request cancelled"
        time.sleep(0.02)


def test_a_stream_whose_first_token_is_late_is_answered_by_the_hedge(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    fake.add(A, word_stream(words(5), first_token_delay=SLOW))
    fake.add(B, word_stream(words(5, stem="b"), model="mb"))
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="hedged",
        messages=MSGS,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"x-request-id": "hedge-stream"},
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    took = time.monotonic() - started
    assert text == "".join(words(5, stem="b"))
    assert 1.9 <= took < 8  # 2 s, then the fallback's own time: far from the slow 20 s
    b_at = fake.received(B)[0].at - fake.received(A)[0].at
    assert 1.9 <= b_at < 4  # the hedge started after `after`, not before
    assert raw.headers["x-router-attempts"] == "2"
    assert raw.headers["x-router-provider"] == "b"
    wait_for_disconnect(fake, A)
    line = access_line(router, "hedge-stream")
    assert sorted((a["target"], a["outcome"]) for a in line["attempts"]) == [
        ("a/ma", "cancelled"),
        ("b/mb", "hedge_ok"),
    ]
    assert line["provider"] == "b"


def test_a_json_answer_that_is_late_is_answered_by_the_hedge(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    slow = json_reply(chat_completion("slow", model="ma"))
    slow.first_delay = SLOW
    fake.add(A, slow)
    fake.add(B, json_reply(chat_completion("quick", model="mb")))
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="hedged",
        messages=MSGS,  # type: ignore[arg-type]
        extra_headers={"x-request-id": "hedge-json"},
    )
    took = time.monotonic() - started
    assert raw.parse().choices[0].message.content == "quick"
    assert 1.9 <= took < 8
    assert raw.headers["x-router-attempts"] == "2"
    wait_for_disconnect(fake, A)
    line = access_line(router, "hedge-json")
    assert sorted(a["outcome"] for a in line["attempts"]) == ["cancelled", "hedge_ok"]


def test_a_first_token_in_time_starts_no_hedge(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add(A, word_stream(words(3), first_token_delay=0.3))
    fake.set_default(B, word_stream(words(3, stem="b"), model="mb"))
    stream = client.chat.completions.create(model="hedged", messages=MSGS, stream=True)  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "".join(words(3))
    assert not fake.received(B)


def test_without_hedge_the_slow_first_token_is_waited_for(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.add(A, word_stream(words(3), first_token_delay=2.5))
    fake.set_default(B, word_stream(words(3, stem="b"), model="mb"))
    started = time.monotonic()
    stream = client.chat.completions.create(model="plain", messages=MSGS, stream=True)  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "".join(words(3)) and time.monotonic() - started >= 2.4
    assert not fake.received(B)


def test_a_percentile_hedge_waits_for_the_targets_own_first_token_times(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    for _ in range(3):  # quick first tokens: the 90th percentile is well below the 0.3 s floor
        fake.add(A, word_stream(words(2)))
        stream = client.chat.completions.create(model="learned", messages=MSGS, stream=True)  # type: ignore[arg-type]
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert not fake.received(B)
    fake.add(A, word_stream(words(2), first_token_delay=SLOW))
    fake.add(B, word_stream(words(2, stem="b"), model="mb"))
    started = time.monotonic()
    stream = client.chat.completions.create(model="learned", messages=MSGS, stream=True)  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "".join(words(2, stem="b"))
    assert time.monotonic() - started < 6  # the floor (0.3 s), not `after` (30 s)
    wait_for_disconnect(fake, A)


def test_a_hedge_counts_against_its_providers_quota(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    fake.add(A, word_stream(words(2), first_token_delay=SLOW))
    fake.add(B, word_stream(words(2, stem="b"), model="mb"))
    stream = client.chat.completions.create(model="quota_hedged", messages=MSGS, stream=True)  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "b1 b2 "
    # The quota (1 a minute) is spent: the next hedge is refused before it is sent, and the
    # slow first target answers in its own time.
    fake.add(A, word_stream(words(2), first_token_delay=1.5))
    stream = client.chat.completions.with_raw_response.create(
        model="quota_hedged",
        messages=MSGS,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"x-request-id": "hedge-quota"},
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices) == (
        "w1 w2 "
    )
    assert len(fake.received(B)) == 1
    line = access_line(router, "hedge-quota")
    assert [(a["target"], a["outcome"]) for a in line["attempts"]] == [
        ("bq/mb", "hedge_quota_fallback"),
        ("a/ma", "ok"),
    ]


def test_a_json_answer_that_has_begun_in_time_is_not_hedged(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    """A JSON answer is raced on its first byte: one whose status and headers came at once is
    waited for, however long its body then takes (3.5 s here, past the 2 s `after`)."""
    body = orjson.dumps(chat_completion("begun at once"))
    json_head = {"content-type": "application/json"}
    fake.add(A, Reply(200, json_head, frames=[body[:20], body[20:]], delay=3.5))
    fake.set_default(B, json_reply(chat_completion("quick")))
    raw = client.chat.completions.with_raw_response.create(
        model="hedged",
        messages=MSGS,  # type: ignore[arg-type]
        extra_headers={"x-request-id": "hedge-json-begun"},
    )
    assert raw.parse().choices[0].message.content == "begun at once"
    assert raw.headers["x-router-attempts"] == "1"
    assert not fake.received(B)
