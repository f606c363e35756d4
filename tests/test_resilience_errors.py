"""Issue 4 matrix, non-streaming: a real router in front of a fault-injecting fake upstream.

Each test asserts what the client sees, how many attempts the upstream saw, their spacing,
and how long the call took.
"""

from __future__ import annotations

import email.utils
import itertools
import time

import openai
import pytest

from router.testing import Reply, chat_completion, closed_after_test, json_reply

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
CONFIG = """
server: {{auth: none}}
providers:
  a:
    plugin: openai
    base_url: "{url}/a/v1"
    timeouts: {{first_token: 0.5, idle: 0.4, total: 0.6}}
  b:
    plugin: openai
    base_url: "{url}/b/v1"
    timeouts: {{first_token: 0.5, idle: 0.4, total: 0.6}}
models:
  chat:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    retries: {{attempts: 2, backoff_initial: 0.1, backoff_max: 0.4, deadline: 8}}
  solo:
    targets: [{{provider: a, model: ma}}]
    retries: {{attempts: 2, backoff_initial: 0.1, backoff_max: 0.4, deadline: 8}}
  small:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb-small}}]
    context_fallback: big
  big:
    targets: [{{provider: b, model: mb-big}}]
"""


@pytest.fixture
def client(fake_upstream, router_server):
    server = router_server(CONFIG.format(url=fake_upstream.url))
    return closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=15)
    )


def call(client, model="chat"):
    """(parsed reply, headers, seconds) of one non-streaming request."""
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MSGS)
    return raw.parse(), raw.headers, time.monotonic() - started


def gaps(fake, path):
    times = [r.at for r in fake.received(path)]
    return [b - a for a, b in itertools.pairwise(times)]


def rate_limited(headers=None):
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": None}}
    return json_reply(body, 429, headers)


def test_429_with_retry_after_seconds_waits_it_out(client, fake_upstream):
    fake_upstream.add(A, rate_limited({"retry-after": "1"}), json_reply(chat_completion("ok")))
    reply, headers, took = call(client)
    assert reply.choices[0].message.content == "ok"
    assert len(fake_upstream.received(A)) == 2 and not fake_upstream.received(B)
    (gap,) = gaps(fake_upstream, A)
    assert 0.95 <= gap < 3
    assert took >= 0.95
    assert headers["x-router-attempts"] == "2"
    assert headers["x-router-provider"] == "a"


def test_429_with_retry_after_http_date_waits_until_then(client, fake_upstream):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    fake_upstream.add(A, rate_limited({"retry-after": when}), json_reply(chat_completion("ok")))
    reply, _, took = call(client)
    assert reply.choices[0].message.content == "ok"
    (gap,) = gaps(fake_upstream, A)
    assert 0.9 <= gap < 3.5  # the date has one-second resolution: between 1 and 2 s from now
    assert took >= 0.9


def test_429_without_retry_after_never_loops_tightly_then_moves_on(client, fake_upstream):
    fake_upstream.set_default(A, rate_limited())
    fake_upstream.add(B, json_reply(chat_completion("from b", model="mb")))
    reply, headers, took = call(client)
    assert reply.choices[0].message.content == "from b"
    assert len(fake_upstream.received(A)) == 3  # the first try and two retries
    assert all(gap >= 0.45 for gap in gaps(fake_upstream, A))  # a floor, not a tight loop
    assert took >= 0.9
    assert headers["x-router-attempts"] == "4"
    assert headers["x-router-provider"] == "b"


def test_429_with_retry_after_beyond_the_limit_moves_on_and_cools(client, fake_upstream):
    fake_upstream.set_default(A, rate_limited({"retry-after": "120"}))
    fake_upstream.set_default(B, json_reply(chat_completion("from b", model="mb")))
    _, headers, took = call(client)
    assert headers["x-router-provider"] == "b"
    assert len(fake_upstream.received(A)) == 1
    assert took < 1.5  # not 120 s, not even one backoff
    _, headers, _ = call(client)  # a is cooling: b first now, a untouched
    assert headers["x-router-attempts"] == "1" and headers["x-router-provider"] == "b"
    assert len(fake_upstream.received(A)) == 1


def test_429_persistent_on_a_sole_target_reaches_the_client_as_429(client, fake_upstream):
    fake_upstream.set_default(A, rate_limited({"retry-after": "0"}))
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        call(client, "solo")
    assert "Rate limit reached" in info.value.message
    assert len(fake_upstream.received(A)) == 3
    assert all(gap >= 0.45 for gap in gaps(fake_upstream, A))  # Retry-After: 0 still waits
    assert time.monotonic() - started >= 0.9


def test_500_once_is_retried_on_the_same_target(client, fake_upstream):
    error = {"error": {"message": "The server had an error", "type": "server_error"}}
    fake_upstream.add(A, json_reply(error, 500), json_reply(chat_completion("ok")))
    reply, headers, took = call(client)
    assert reply.choices[0].message.content == "ok"
    assert len(fake_upstream.received(A)) == 2 and not fake_upstream.received(B)
    (gap,) = gaps(fake_upstream, A)
    assert gap < 0.1 + 0.5  # full jitter under the first ceiling (0.1 s), plus slack
    assert took < 2
    assert headers["x-router-attempts"] == "2"


def test_503_persistent_retries_then_falls_back_and_reports_the_answering_model(
    client, fake_upstream
):
    error = {"error": {"message": "overloaded", "type": "server_error"}}
    fake_upstream.set_default(A, json_reply(error, 503))
    fake_upstream.add(B, json_reply(chat_completion("from b", model="mb", usage=(7, 3))))
    reply, headers, took = call(client)
    assert reply.choices[0].message.content == "from b"
    assert reply.model == "mb"  # the model that answered
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (7, 3)
    assert len(fake_upstream.received(A)) == 3 and len(fake_upstream.received(B)) == 1
    first, second = gaps(fake_upstream, A)
    assert first < 0.1 + 0.5 and second < 0.2 + 0.5  # exponential ceilings, full jitter
    assert took < 3
    assert headers["x-router-model"] == "chat"
    assert headers["x-router-provider"] == "b"
    assert headers["x-router-attempts"] == "4"


def test_503_persistent_on_a_sole_target_gives_a_mapped_error(client, fake_upstream):
    error = {"error": {"message": "overloaded", "type": "server_error"}}
    fake_upstream.set_default(A, json_reply(error, 503))
    with pytest.raises(openai.InternalServerError) as info:
        call(client, "solo")
    assert info.value.status_code in (502, 503)  # a mapped upstream server error
    assert "overloaded" in info.value.message
    assert len(fake_upstream.received(A)) == 3


def test_connection_reset_before_headers_is_retried(client, fake_upstream):
    fake_upstream.add(A, Reply(drop_before_headers=True), json_reply(chat_completion("ok")))
    reply, headers, took = call(client)
    assert reply.choices[0].message.content == "ok"
    assert len(fake_upstream.received(A)) == 2
    assert gaps(fake_upstream, A)[0] < 0.6
    assert headers["x-router-attempts"] == "2"
    assert took < 2


def test_no_response_at_all_times_out_and_falls_back_without_waiting_twice(client, fake_upstream):
    fake_upstream.set_default(A, Reply(hang=True))
    fake_upstream.add(B, json_reply(chat_completion("from b", model="mb")))
    reply, headers, took = call(client)
    assert reply.choices[0].message.content == "from b"
    assert len(fake_upstream.received(A)) == 1  # a timed-out target is not waited on again
    assert 0.45 <= took < 2.5  # the 0.5 s first-token timeout, then b
    assert headers["x-router-attempts"] == "2"


def test_no_response_on_a_sole_target_is_bounded_by_its_timeout(client, fake_upstream):
    fake_upstream.set_default(A, Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        call(client, "solo")
    assert info.value.status_code == 504
    assert time.monotonic() - started < 2.5
    assert len(fake_upstream.received(A)) == 1


def test_context_length_goes_to_the_context_fallback_never_the_same_model(client, fake_upstream):
    error = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    fake_upstream.set_default(A, json_reply(error, 400))
    fake_upstream.add(B, json_reply(chat_completion("long answer", model="mb-big")))
    reply, headers, _ = call(client, "small")
    assert reply.choices[0].message.content == "long answer"
    assert reply.model == "mb-big"
    assert len(fake_upstream.received(A)) == 1
    (sent,) = fake_upstream.received(B)  # not small's own second target: the big model
    assert sent.json()["model"] == "mb-big"
    assert headers["x-router-model"] == "big"
    assert headers["x-router-attempts"] == "2"


def test_context_length_without_a_context_fallback_tells_the_client(client, fake_upstream):
    error = {"error": {"message": "maximum context length exceeded", "code": "context_length"}}
    fake_upstream.set_default(A, json_reply(error, 400))
    with pytest.raises(openai.BadRequestError) as info:
        call(client, "solo")
    assert "maximum context length" in info.value.message
    assert info.value.code == "context_length_exceeded"
    assert len(fake_upstream.received(A)) == 1


def test_content_policy_is_not_retried_and_the_reason_reaches_the_client(client, fake_upstream):
    reason = "Your request was rejected as a result of our safety system."
    error = {"error": {"message": reason, "code": "content_filter"}}
    fake_upstream.set_default(A, json_reply(error, 400))
    fake_upstream.set_default(B, json_reply(chat_completion("should not happen")))
    started = time.monotonic()
    with pytest.raises(openai.BadRequestError) as info:
        call(client)
    assert reason in info.value.message
    assert info.value.code == "content_policy_violation"
    assert len(fake_upstream.received(A)) == 1 and not fake_upstream.received(B)
    assert time.monotonic() - started < 1
