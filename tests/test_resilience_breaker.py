"""Circuit breakers: the state machine, a primary that goes down and comes back, and the
state and transitions at `/metrics`.

The served breakers stay open for 2 s: long enough that a loaded machine still asks its
requests while one is open; the tests then wait for it to half-open by polling, not by
sleeping for a guessed time."""

from __future__ import annotations

import concurrent.futures

import httpx
import openai
import pytest

from router.config.resilience import BreakerConfig
from router.routing.breaker import Breaker, State
from router.testing import chat_completion, closed_after_test, json_reply, wait_until

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
ADMIN = "admin-secret-123"
CONFIG = """
server: {{auth: none, admin_key: {admin}}}
providers:
  a: {{plugin: openai, base_url: "{url}/a/v1", api_key: sk-upstream-a}}
  b: {{plugin: openai, base_url: "{url}/b/v1"}}
models:
  chat:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    retries: {{attempts: 0}}
    breaker: {{consecutive_failures: 2, failure_rate: null, open_for: 2}}
"""


def test_opens_after_consecutive_failures_and_probes_once():
    breaker = Breaker(BreakerConfig(consecutive_failures=3, failure_rate=None, open_for=10))
    for _ in range(2):
        assert breaker.allow(0.0)
        breaker.failure(0.0)
    breaker.success(0.0)  # a success resets the count
    for _ in range(3):
        breaker.failure(1.0)
    assert breaker.state is State.OPEN and not breaker.allow(5.0)
    assert breaker.allow(11.0)  # half-open: this caller is the probe
    assert not breaker.allow(11.0) and not breaker.allow(11.5)  # nobody else
    breaker.failure(11.6)  # the probe failed: open again, for another open_for
    assert breaker.state is State.OPEN and not breaker.allow(20.0)
    assert breaker.allow(21.7)
    breaker.success(21.8)
    assert breaker.state is State.CLOSED and breaker.allow(21.9) and breaker.allow(21.9)
    assert breaker.opened == 2


def test_failure_rate_over_the_window():
    policy = BreakerConfig(consecutive_failures=100, failure_rate=0.5, window=10, min_requests=4)
    breaker = Breaker(policy)
    for i in range(3):  # ok, fail, ok, fail ... never two in a row
        breaker.success(float(i))
        breaker.failure(float(i))
    assert breaker.state is State.OPEN  # 3 of 6 failed
    quiet = Breaker(policy)
    quiet.failure(0.0)
    quiet.success(0.1)
    quiet.failure(30.0)  # the early attempts left the window: too few to judge
    quiet.success(30.1)
    assert quiet.state is State.CLOSED


def test_released_probe_lets_the_next_request_probe():
    breaker = Breaker(BreakerConfig(consecutive_failures=1, open_for=1))
    breaker.failure(0.0)
    assert breaker.allow(2.0)
    breaker.release()  # e.g. the client went away, or the probe got a 429
    assert breaker.allow(2.1)


@pytest.fixture
def router(fake_upstream, router_server):
    return router_server(CONFIG.format(url=fake_upstream.url, admin=ADMIN))


def _states(router):
    response = httpx.get(router.url + "/admin/breakers", headers={"x-api-key": ADMIN})
    assert response.status_code == 200
    assert "sk-upstream-a" not in response.text and ADMIN not in response.text
    return {item["target"]: item for item in response.json()["data"]}


def test_primary_down_then_back_breaker_opens_fallback_serves_primary_returns(
    router, fake_upstream
):
    client = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=10)
    )
    down = {"on": True}

    def primary(_received):
        if down["on"]:
            return json_reply({"error": {"message": "down for maintenance"}}, 503)
        return json_reply(chat_completion("from a", model="ma"))

    fake_upstream.set_default(A, primary)
    fake_upstream.set_default(B, json_reply(chat_completion("from b", model="mb")))

    def ask():
        raw = client.chat.completions.with_raw_response.create(model="chat", messages=MSGS)
        return raw.parse().choices[0].message.content, raw.headers["x-router-attempts"]

    assert [ask() for _ in range(2)] == [("from b", "2")] * 2
    assert len(fake_upstream.received(A)) == 2
    state = _states(router)["a/ma"]
    assert state["state"] == "open" and state["opened_total"] == 1
    assert 0 < state["retry_in"] <= 2

    assert [ask() for _ in range(3)] == [("from b", "1")] * 3  # a skipped, not tried
    assert len(fake_upstream.received(A)) == 2

    down["on"] = False
    wait_until(lambda: _states(router)["a/ma"]["state"] == "half_open", "still open")
    assert ask() == ("from a", "1")  # the probe goes to a and closes the breaker
    assert _states(router)["a/ma"]["state"] == "closed"
    assert [ask() for _ in range(2)] == [("from a", "1")] * 2
    assert len(fake_upstream.received(A)) == 5


def test_half_open_sends_a_single_probe_under_concurrency(router, fake_upstream):
    client = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=10)
    )
    fake_upstream.add(A, *[json_reply({"error": {"message": "down"}}, 500)] * 2)
    fake_upstream.set_default(B, json_reply(chat_completion("from b", model="mb")))
    for _ in range(2):
        client.chat.completions.create(model="chat", messages=MSGS)
    wait_until(lambda: _states(router)["a/ma"]["state"] == "half_open", "still open")
    fake_upstream.set_default(A, lambda _r: _slow_ok())

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(client.chat.completions.create, model="chat", messages=MSGS)
            for _ in range(4)
        ]
        answers = sorted(f.result().choices[0].message.content for f in futures)
    assert answers == ["from a", "from b", "from b", "from b"]
    assert len(fake_upstream.received(A)) == 3  # two failures, then exactly one probe


def _slow_ok():
    reply = json_reply(chat_completion("from a", model="ma"))
    reply.first_delay = 0.4
    return reply


def test_client_errors_do_not_open_a_breaker(router, fake_upstream):
    client = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=10)
    )
    bad = {"error": {"message": "temperature must be <= 2", "param": "temperature"}}
    fake_upstream.set_default(A, json_reply(bad, 400))
    for _ in range(3):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="chat", messages=MSGS)
    assert _states(router)["a/ma"]["state"] == "closed"
    assert len(fake_upstream.received(A)) == 3 and not fake_upstream.received(B)


def test_admin_breakers_needs_the_admin_key(router):
    assert httpx.get(router.url + "/admin/breakers").status_code == 401
    wrong = httpx.get(router.url + "/admin/breakers", headers={"x-api-key": "nope"})
    assert wrong.status_code == 401
    assert set(_states(router)) == {"a/ma", "b/mb"}


# -- at /metrics ---------------------------------------------------------------------------


def _samples(url: str, name: str) -> dict[str, float]:
    """`{labels: value}` for every sample of one metric in the Prometheus text."""
    out = {}
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def _state(url: str) -> dict[str, float]:
    return _samples(url, "llm_router_breaker_state")


def _moves(url: str, target: str) -> dict[str, float]:
    prefix = f'{{model="chat",target="{target}",to="'
    samples = _samples(url, "llm_router_breaker_transitions_total")
    return {k[len(prefix) : -2]: v for k, v in samples.items() if k.startswith(prefix)}


def test_metrics_show_each_targets_breaker_state_and_transitions(router, fake_upstream):
    client = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=10)
    )
    a, b = '{model="chat",target="a/ma"}', '{model="chat",target="b/mb"}'
    assert _state(router.url) == {a: 0, b: 0}
    assert _moves(router.url, "a/ma") == {"open": 0, "half_open": 0, "closed": 0}

    fake_upstream.add(A, *[json_reply({"error": {"message": "down"}}, 500)] * 2)
    fake_upstream.set_default(B, json_reply(chat_completion("from b", model="mb")))
    for _ in range(2):
        client.chat.completions.create(model="chat", messages=MSGS)
    assert _state(router.url) == {a: 2, b: 0}  # open
    assert _moves(router.url, "a/ma") == {"open": 1, "half_open": 0, "closed": 0}

    wait_until(lambda: _state(router.url)[a] == 1, "not half-open")  # the next one probes
    fake_upstream.set_default(A, json_reply(chat_completion("from a", model="ma")))
    assert client.chat.completions.create(model="chat", messages=MSGS).model == "ma"
    assert _state(router.url) == {a: 0, b: 0}
    assert _moves(router.url, "a/ma") == {"open": 1, "half_open": 1, "closed": 1}
    assert _moves(router.url, "b/mb") == {"open": 0, "half_open": 0, "closed": 0}


def test_a_stopped_router_leaves_no_breaker_series(router, fake_upstream, router_server):
    assert len(_state(router.url)) == 2
    router.stop()
    other = router_server(CONFIG.format(url=fake_upstream.url, admin=ADMIN), name="other.yaml")
    assert len(_state(other.url)) == 2  # only the running router's breakers
