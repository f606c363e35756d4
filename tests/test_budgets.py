"""Spend budgets through `llm-switchyard serve`: money and tokens per period, reserved at
admission, reconciled with the reported usage, refused with 429 `budget_exceeded` or sent to
a cheaper model, and shown in headers and `/metrics`."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openai
import pytest

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)
from router.upstream.usage import estimate_prompt_tokens

MESSAGES = [{"role": "user", "content": "hello there"}]
# input 1000/M, output 2000/M: a token costs 0.001, an answer token 0.002
PRICE = "{input: 1000, output: 2000}"
CHEAP = "{input: 10, output: 20}"
ADMIN = "admin-key-for-the-budget-tests-0123456789"


def config(upstream: str, extra: str = "", budgets: str = "") -> str:
    return textwrap.dedent(
        f"""
        server: {{auth: keys, watch_config: false, admin_key: "{ADMIN}"}}
        budgets:
          daily: {{amount: 0.05, period: day, timezone: Europe/Paris}}
          to-cheap: {{amount: 0.05, period: month, on_exceeded: fallback, fallback: cheap}}
          tokens: {{tokens: 40, window: 3600}}
          {budgets}
        providers:
          up: {{plugin: openai, base_url: {upstream}/v1, api_key: sk-up}}
        models:
          pricey: {{targets: [{{provider: up, model: big, price: {PRICE}}}], budgets: [daily]}}
          falls: {{targets: [{{provider: up, model: big, price: {PRICE}}}], budgets: [to-cheap]}}
          cheap: {{targets: [{{provider: up, model: small, price: {CHEAP}}}]}}
          counted: {{targets: [{{provider: up, model: big, price: {PRICE}}}], budgets: [tokens]}}
          mixed:
            targets: [{{provider: up, model: small, price: {CHEAP}}}]
            fallbacks: [pricey]
            budgets: [daily]
        keys:
          app: {{key: sk-app}}
          narrow: {{key: sk-narrow, models: [falls]}}
        {extra}
        """
    )


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.set_default("/v1/chat/completions", json_reply(chat_completion(usage=(5, 2))))
        yield fake


def _serve(tmp_path: Path, text: str) -> RouterProcess:
    """The router for `text`, started (and stopped) by the `with` that takes it."""
    path = tmp_path / "router.yaml"
    path.write_text(text)
    return RouterProcess(path)


def _client(router: RouterProcess, key: str = "sk-app") -> openai.OpenAI:
    return closed_after_test(openai.OpenAI(base_url=router.base_url, api_key=key, max_retries=0))


def _estimate(max_tokens: int) -> float:
    """The router's admission estimate at PRICE for MESSAGES and `max_tokens`."""
    prompt = estimate_prompt_tokens({"model": "pricey", "messages": MESSAGES})
    return prompt * 0.001 + max_tokens * 0.002


def _until_refused(client: openai.OpenAI, model: str, **body: object) -> tuple[int, object]:
    for n in range(200):
        try:
            client.chat.completions.create(model=model, messages=MESSAGES, **body)  # type: ignore[call-overload]
        except openai.RateLimitError as exc:
            return n, exc
    raise AssertionError("never refused")


def test_a_money_budget_admits_what_it_can_pay_for_then_refuses_until_its_period_ends(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with _serve(tmp_path, config(upstream.url)) as router:
        client = _client(router)
        raw = client.chat.completions.with_raw_response.create(
            model="pricey", messages=MESSAGES, max_tokens=10
        )
        # the estimate was reserved, then replaced by what the answer cost (5 + 2 tokens)
        assert raw.headers["x-budget-limit"] == "0.05"
        assert raw.headers["x-budget-unit"] == "USD"
        left = float(raw.headers["x-budget-remaining"])
        assert left == pytest.approx(0.05 - _estimate(10), abs=1e-9)  # as admitted
        cost = 5 * 0.001 + 2 * 0.002
        answered, refusal = _until_refused(client, "pricey", max_tokens=10)
        # each answer cost 0.009; a request is admitted while the spent plus its estimate fit
        spent = cost * (1 + answered)
        assert spent <= 0.05
        assert spent + _estimate(10) > 0.05
        error = refusal.response  # type: ignore[attr-defined]
        assert error.status_code == 429
        body = error.json()["error"]
        assert body["code"] == "budget_exceeded"
        assert body["type"] == "rate_limit_error"
        assert "budget 'daily' (model:pricey) of 0.05 USD per day has " in body["message"]
        said = body["message"].split(" has ")[1].split(" USD left, less than this request's")[0]
        assert float(said) == pytest.approx(0.05 - spent, abs=1e-9)  # what it had left
        assert f"estimated cost of {_estimate(10):g} USD" in body["message"]
        paris = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
        midnight = (paris + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        assert abs(int(error.headers["retry-after"]) - (midnight - paris).total_seconds()) <= 3
        assert error.headers["x-budget-reset"] == error.headers["retry-after"]
        # a cheaper request that still fits is admitted: the check is the estimate, not a flag
        small = client.chat.completions.create(model="pricey", messages=MESSAGES, max_tokens=1)
        assert small.choices[0].message.content == "Hello!"
        # a request that may cost more than the whole budget never fits: said so, no wait
        with pytest.raises(openai.RateLimitError) as never:
            client.chat.completions.create(model="pricey", messages=MESSAGES, max_tokens=1000)
        assert never.value.code == "budget_exceeded"
        assert f"estimated cost, {_estimate(1000):g} USD, is more than the whole budget" in (
            never.value.message
        )
        assert "retry-after" not in never.value.response.headers
        assert never.value.response.headers["x-budget-unit"] == "USD"
        metrics = httpx.get(router.url + "/metrics").text
    line = [m for m in metrics.splitlines() if m.startswith("llm_router_budget_remaining{")]
    assert line == [
        f'llm_router_budget_remaining{{budget="daily",scope="model:pricey",unit="USD"}} '
        f"{line[0].rsplit(' ', 1)[1]}"
    ]
    assert 0 <= float(line[0].rsplit(" ", 1)[1]) < 0.05


def test_the_estimate_takes_the_highest_price_a_request_may_reach(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with _serve(tmp_path, config(upstream.url)) as router:
        raw = _client(router).chat.completions.with_raw_response.create(
            model="mixed", messages=MESSAGES, max_tokens=10
        )
    # priced as its fallback `pricey` (PRICE), not as its own cheap target
    assert float(raw.headers["x-budget-remaining"]) == pytest.approx(0.05 - _estimate(10), abs=1e-9)


def test_the_estimate_counts_every_completion_a_request_asks_for(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """`n` completions may each be `max_tokens` long, and the upstream bills them all: the
    estimate is an upper bound only if it counts each (with a provider budget in the table
    too, the other way admission goes)."""
    prompt = estimate_prompt_tokens({"model": "pricey", "messages": MESSAGES})
    provider_budget = "monthly-up: {amount: 100, period: month}"
    for text in (config(upstream.url), config(upstream.url, budgets=provider_budget)):
        if "monthly-up" in text:
            text = text.replace("api_key: sk-up}", "api_key: sk-up, budgets: [monthly-up]}")
        with _serve(tmp_path, text) as router:
            client = _client(router)
            raw = client.chat.completions.with_raw_response.create(
                model="pricey", messages=MESSAGES, max_tokens=5, n=3
            )
            estimate = prompt * 0.001 + 3 * 5 * 0.002
            left = float(raw.headers["x-budget-remaining"])
            assert left == pytest.approx(0.05 - estimate, abs=1e-9)
            # (the period's counter exists now: the next takes admission's quicker way)
            raw = client.chat.completions.with_raw_response.create(
                model="pricey", messages=MESSAGES, max_tokens=5, n=3
            )
            left = float(raw.headers["x-budget-remaining"])
            assert left == pytest.approx(0.05 - 0.009 - estimate, abs=1e-9)  # 0.009: 1st answer
            # a budget of 40 tokens: 3 x 5 fits beside the prompt, 3 x 20 never does
            raw = client.chat.completions.with_raw_response.create(
                model="counted", messages=MESSAGES, max_tokens=5, n=3
            )
            assert int(raw.headers["x-budget-remaining"]) == 40 - prompt - 15
            with pytest.raises(openai.RateLimitError) as refused:
                client.chat.completions.create(
                    model="counted", messages=MESSAGES, max_tokens=20, n=3
                )
            assert "can never be admitted" in refused.value.response.json()["error"]["message"]


def test_counts_below_their_least_are_refused_before_any_budget_is_asked(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """A negative `max_tokens` is the client's mistake (400 naming it), not a spent budget."""
    with _serve(tmp_path, config(upstream.url)) as router:
        client = _client(router)
        for field, value in (("max_tokens", -5), ("max_completion_tokens", -1), ("n", 0)):
            with pytest.raises(openai.BadRequestError) as bad:
                client.chat.completions.create(
                    model="pricey",
                    messages=MESSAGES,
                    **{field: value},  # type: ignore[call-overload]
                )
            error = bad.value.response.json()["error"]
            assert error["param"] == field
            assert error["type"] == "invalid_request_error"
            assert f"'{field}' must be an integer of at least" in error["message"]
        assert upstream.received("/v1/chat/completions") == []
        with pytest.raises(openai.BadRequestError) as bad:  # completions' `best_of`, as `n`
            client.completions.create(model="pricey", prompt="hi", best_of=0)
        assert bad.value.response.json()["error"]["param"] == "best_of"
        assert (
            "'best_of' must be an integer of at least 1"
            in bad.value.response.json()["error"]["message"]
        )
        # 0 is passed on: a legacy completion with `echo` asks for none
        raw = client.chat.completions.with_raw_response.create(
            model="pricey", messages=MESSAGES, max_tokens=0
        )
        assert raw.http_response.status_code == 200


def test_a_spent_budget_with_fallback_sends_requests_to_the_cheaper_model(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with _serve(tmp_path, config(upstream.url)) as router:
        client = _client(router)
        models = []
        for _ in range(12):
            raw = client.chat.completions.with_raw_response.create(
                model="falls", messages=MESSAGES, max_tokens=10
            )
            models.append(raw.headers["x-router-model"])
        assert models[0] == "falls" and models[-1] == "cheap"
        cut = models.index("cheap")
        assert models[cut:] == ["cheap"] * (12 - cut)
        sent = [r.json()["model"] for r in upstream.received("/v1/chat/completions")]
        assert sent == ["big"] * cut + ["small"] * (12 - cut)
        # a key that may not use the fallback model is refused instead
        with pytest.raises(openai.RateLimitError) as refused:
            _client(router, "sk-narrow").chat.completions.create(
                model="falls", messages=MESSAGES, max_tokens=10
            )
    assert refused.value.response.json()["error"]["code"] == "budget_exceeded"


def test_a_token_budget_counts_the_reported_usage_over_a_rolling_window(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with _serve(tmp_path, config(upstream.url)) as router:
        client = _client(router)
        answered, refusal = _until_refused(client, "counted", max_tokens=5)
        # 7 tokens per answer (5 + 2), each admitted while spent + estimate <= 40
        prompt = estimate_prompt_tokens({"model": "counted", "messages": MESSAGES})
        assert 7 * answered <= 40 < 7 * answered + prompt + 5
        error = refusal.response  # type: ignore[attr-defined]
        assert error.headers["x-budget-unit"] == "tokens"
        # the window frees room when the first answer leaves it: at most one of its 100
        # sub-windows (36 s) late
        assert 3500 < int(error.headers["retry-after"]) <= 3600 + 36 + 1


def test_streams_are_charged_at_their_end_and_a_client_that_leaves_for_what_was_produced(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    budgets = "streamed: {tokens: 100000, period: day}"
    text = config(upstream.url, budgets=budgets).replace(
        "models:\n",
        f"  st: {{plugin: openai, base_url: {upstream.url}/s, api_key: sk-up}}\nmodels:\n"
        f"  streams: {{targets: [{{provider: st, model: big, price: {PRICE}}}], "
        "budgets: [streamed]}\n",
    )
    upstream.set_default("/s/chat/completions", json_reply(chat_completion(usage=(5, 2))))
    long = ["word " * 50] * 40  # 40 pieces of 250 characters
    upstream.add("/s/chat/completions", sse_reply(chat_chunks(usage=(11, 600))))
    with _serve(tmp_path, text) as router:
        client = _client(router)
        stream = client.chat.completions.create(
            model="streams", messages=MESSAGES, stream=True, max_tokens=10
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        first = _remaining(client)
        assert first == 100000 - 611  # the usage the stream reported at its end
        upstream.add(
            "/s/chat/completions",
            sse_reply(chat_chunks(pieces=long, usage=(11, 2500)), delay=0.05),
        )
        stream = client.chat.completions.create(
            model="streams", messages=MESSAGES, stream=True, max_tokens=10
        )
        for n, _ in enumerate(stream):
            if n == 5:
                break
        stream.close()  # the client leaves mid-stream
        deadline, probes = time.monotonic() + 10, 1
        while True:
            left = _remaining(client)
            charged = first - left - 7 * probes  # (each probe's own answer: 5 + 2 tokens)
            probes += 1
            if charged > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    # what the upstream had produced when the client left: some pieces, not all 2500 tokens
    assert 0 < charged < 2511


def _remaining(client: openai.OpenAI) -> int:
    """What the `streamed` budget has left before the estimate of one more request."""
    raw = client.chat.completions.with_raw_response.create(
        model="streams", messages=MESSAGES, max_tokens=1, stream=False
    )
    prompt = estimate_prompt_tokens({"model": "streams", "messages": MESSAGES})
    return int(raw.headers["x-budget-remaining"]) + prompt + 1


PROVIDERS = """
server: {{auth: none, watch_config: false, admin_key: "{admin}"}}
budgets:
  skip: {{amount: 0.02, period: week, on_exceeded: fallback}}
  stop: {{amount: 0.02, period: week}}
  global: {{tokens: 1000000, period: month}}
providers:
  lim: {{plugin: openai, base_url: {upstream}/lim, api_key: sk-up, budgets: [skip]}}
  hard: {{plugin: openai, base_url: {upstream}/hard, api_key: sk-up, budgets: [stop]}}
  up: {{plugin: openai, base_url: {upstream}/v1, api_key: sk-up}}
models:
  multi:
    targets:
      - {{provider: lim, model: big, price: {price}}}
      - {{provider: up, model: big, price: {price}}}
  strict: {{targets: [{{provider: hard, model: big, price: {price}}}]}}
"""


def test_a_provider_budget_is_checked_per_attempt_and_skips_or_refuses(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    for path in ("/lim/chat/completions", "/hard/chat/completions"):
        upstream.set_default(path, json_reply(chat_completion(usage=(5, 2))))
    text = PROVIDERS.format(admin=ADMIN, upstream=upstream.url, price=PRICE)
    with _serve(tmp_path, text) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
        )
        providers = []
        for _ in range(6):
            raw = client.chat.completions.with_raw_response.create(
                model="multi", messages=MESSAGES, max_tokens=1
            )
            providers.append(raw.headers["x-router-provider"])
        assert providers[0] == "lim" and providers[-1] == "up"
        cut = providers.index("up")
        assert providers[cut:] == ["up"] * (6 - cut)
        assert raw.headers["x-router-attempts"] == "2"  # the skipped one, then `up`
        answered, refusal = _until_refused(client, "strict", max_tokens=1)
        assert answered >= 1
        assert refusal.response.json()["error"]["code"] == "budget_exceeded"  # type: ignore[attr-defined]
        assert "budget 'stop' (provider:hard)" in refusal.response.json()["error"]["message"]  # type: ignore[attr-defined]


def test_the_messages_and_responses_apis_refuse_in_their_own_shapes(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with _serve(tmp_path, config(upstream.url)) as router:
        _until_refused(_client(router), "pricey", max_tokens=10)
        messages = httpx.post(
            router.url + "/v1/messages",
            headers={"x-api-key": "sk-app", "anthropic-version": "2023-06-01"},
            json={"model": "pricey", "max_tokens": 10, "messages": MESSAGES},
        )
        responses = httpx.post(
            router.base_url + "/responses",
            headers={"authorization": "Bearer sk-app"},
            json={"model": "pricey", "input": "hello there", "max_output_tokens": 10},
        )
    assert messages.status_code == 429
    assert messages.json()["type"] == "error"
    assert messages.json()["error"]["type"] == "rate_limit_error"
    assert "budget 'daily'" in messages.json()["error"]["message"]
    assert int(messages.headers["retry-after"]) >= 1
    assert responses.status_code == 429
    assert responses.json()["error"]["code"] == "budget_exceeded"
    assert int(responses.headers["retry-after"]) >= 1


def test_a_reload_keeps_what_was_spent(tmp_path: Path, upstream: FakeUpstream) -> None:
    with _serve(tmp_path, config(upstream.url)) as router:
        client = _client(router)
        before = client.chat.completions.with_raw_response.create(
            model="pricey", messages=MESSAGES, max_tokens=10
        )
        left = float(before.headers["x-budget-remaining"])
        path = tmp_path / "router.yaml"
        path.write_text(
            path.read_text().replace("amount: 0.05, period: day", "amount: 0.06, period: day")
        )
        reload = httpx.post(
            router.url + "/admin/reload", headers={"authorization": f"Bearer {ADMIN}"}
        )
        assert reload.status_code == 200, reload.text
        after = client.chat.completions.with_raw_response.create(
            model="pricey", messages=MESSAGES, max_tokens=10
        )
    assert after.headers["x-budget-limit"] == "0.06"
    # the first answer's 0.009 is still spent, now out of 0.06
    spent_first = 5 * 0.001 + 2 * 0.002
    assert float(after.headers["x-budget-remaining"]) == pytest.approx(
        0.06 - spent_first - _estimate(10), abs=1e-9
    )
    assert left == pytest.approx(0.05 - _estimate(10), abs=1e-9)


def test_check_reports_a_target_a_money_budget_needs_that_has_no_price(tmp_path: Path) -> None:
    import subprocess

    from router.testing.server import cli_command

    path = tmp_path / "router.yaml"
    path.write_text(
        textwrap.dedent(
            """
            server: {auth: none}
            budgets:
              spend: {amount: 10, period: month, timezone: Mars/Olympus}
              tok: {tokens: 100, window: 3600, on_exceeded: fallback}
            providers:
              up: {plugin: mock}
            models:
              priced: {targets: [{provider: up, model: a, price: {input: 1, output: 1}}],
                       fallbacks: [free], budgets: [spend]}
              free: {targets: [{provider: up, model: b}], budgets: [tok, nope]}
            """
        )
    )
    out = subprocess.run([cli_command(), "check", str(path)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "unknown time zone 'Mars/Olympus'" in out.stdout + out.stderr
    path.write_text(path.read_text().replace("Mars/Olympus", "Europe/Paris"))
    out = subprocess.run([cli_command(), "check", str(path)], capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert (
        "models.free.targets[0]: target up/b has no price, but money budget 'spend' applies "
        "to requests that may reach it"
    ) in text
    assert "unknown budget 'nope'" in text
    # an invalid entry elsewhere does not hide the budgets from the reference checks
    path.write_text(path.read_text().replace("up: {plugin: mock}", "up: {plugin: mock, bad: 1}"))
    out = subprocess.run([cli_command(), "check", str(path)], capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert "providers.up.bad" in text and "unknown budget 'spend'" not in text
    assert "unknown budget 'nope'" in text
    assert "budgets.tok.on_exceeded: `fallback` needs the model" in text


SCOPES = """
server: {{auth: keys, watch_config: false}}
budgets:
  everyone: {{amount: 100, period: month, timezone: America/New_York}}
  per-key: {{tokens: 5000, period: day, output_tokens: 300}}
providers:
  up: {{plugin: openai, base_url: {upstream}/v1, api_key: sk-up}}
models:
  a: {{targets: [{{provider: up, model: big, price: {price}}}]}}
  b: {{targets: [{{provider: up, model: big, price: {price}}}]}}
keys:
  one: {{key: sk-one, budgets: [per-key]}}
  two: {{key: sk-two, budgets: [per-key]}}
"""


def test_global_and_key_budgets_count_each_attachment_apart_and_failures_cost_nothing(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    text = SCOPES.format(upstream=upstream.url, price=PRICE).replace(
        "server: {auth: keys, watch_config: false}",
        "server: {auth: keys, watch_config: false, budgets: [everyone]}",
    )
    prompt = estimate_prompt_tokens({"model": "a", "messages": MESSAGES})
    with _serve(tmp_path, text) as router:
        one, two = _client(router, "sk-one"), _client(router, "sk-two")

        def left(client: openai.OpenAI, model: str) -> int:
            raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
            assert raw.headers["x-budget-unit"] == "tokens"  # the tighter of the two
            return int(raw.headers["x-budget-remaining"])

        # no max_tokens: the estimate takes the budget's `output_tokens` (300)
        assert left(one, "a") == 5000 - prompt - 300
        # key `one`'s budget counts both models; key `two` has its own
        assert left(one, "b") == 5000 - 7 - prompt - 300
        assert left(two, "a") == 5000 - prompt - 300
        # a request that fails upstream costs nothing
        upstream.add("/v1/chat/completions", json_reply({"error": {"message": "no"}}, 400))
        with pytest.raises(openai.BadRequestError):
            one.chat.completions.create(model="a", messages=MESSAGES)
        assert left(one, "a") == 5000 - 7 - 7 - prompt - 300
        metrics = httpx.get(router.url + "/metrics").text
    assert 'llm_router_budget_remaining{budget="per-key",scope="key:one",unit="tokens"}' in metrics
    assert 'llm_router_budget_remaining{budget="per-key",scope="key:two",unit="tokens"}' in metrics
    assert 'llm_router_budget_remaining{budget="everyone",scope="global",unit="USD"}' in metrics


def test_an_unreachable_shared_backend_admits_or_refuses_as_on_error_says(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    from router.testing import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    text = textwrap.dedent(
        f"""
        server:
          auth: none
          watch_config: false
          rate_limit_backend: {{url: "{dead}", timeout: 0.2}}
        budgets:
          open: {{amount: 1, period: day}}
          closed: {{amount: 1, period: day, on_error: closed}}
        providers:
          up: {{plugin: openai, base_url: {upstream.url}/v1, api_key: sk-up}}
        models:
          lenient: {{targets: [{{provider: up, model: big, price: {PRICE}}}], budgets: [open]}}
          strict: {{targets: [{{provider: up, model: big, price: {PRICE}}}], budgets: [closed]}}
        """
    )
    with _serve(tmp_path, text) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
        )
        answer = client.chat.completions.create(model="lenient", messages=MESSAGES)
        assert answer.choices[0].message.content == "Hello!"
        with pytest.raises(openai.InternalServerError) as refused:
            client.chat.completions.create(model="strict", messages=MESSAGES)
    assert refused.value.status_code == 503
    assert refused.value.response.json()["error"]["code"] == "rate_limit_backend_unavailable"


def test_a_token_budget_counts_an_operation_without_tokens_in_its_own_unit(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    from router.testing.media import image_reply

    upstream.set_default("/v1/images/generations", image_reply(1))
    upstream.set_default(
        "/v1/embeddings",
        json_reply(
            {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "model": "e",
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        ),
    )
    text = textwrap.dedent(
        f"""
        server: {{auth: none, watch_config: false}}
        budgets:
          pictures: {{tokens: 2500, period: day}}
          vectors: {{tokens: 10, period: day}}
        providers:
          up: {{plugin: openai, base_url: {upstream.url}/v1, api_key: sk-up}}
        models:
          draw: {{targets: [{{provider: up, model: img}}], budgets: [pictures]}}
          embed: {{targets: [{{provider: up, model: e}}], budgets: [vectors]}}
        """
    )
    with _serve(tmp_path, text) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
        )
        client.images.generate(model="draw", prompt="a cat", n=2)  # 2 x 1,000 of 2,500
        with pytest.raises(openai.RateLimitError) as refused:
            client.images.generate(model="draw", prompt="a cat")
        # embeddings count their reported tokens (3 each), estimated at the prompt's alone
        # (1: no completion): the fourth fits its estimate in what is left (9 + 1 <= 10)
        vectors = [client.embeddings.create(model="embed", input="hi") for _ in range(4)]
        with pytest.raises(openai.RateLimitError):
            client.embeddings.create(model="embed", input="hi")
    assert refused.value.response.json()["error"]["code"] == "budget_exceeded"
    assert len(vectors) == 4


def test_a_calendar_budget_counts_each_period_under_a_key_of_its_own() -> None:
    from zoneinfo import ZoneInfo

    from router.spend.budget_table import Budget, BudgetSet

    budget = Budget(
        "b", "global", True, 10, "day", ZoneInfo("Europe/Paris"), 2 * 86_400_000,
        "reject", None, 1024, False, "USD",
    )  # fmt: skip
    budgets = BudgetSet((budget,), None)
    evening = datetime(2026, 12, 1, 22, 59, tzinfo=UTC).timestamp()  # 23:59 in Paris
    first = budgets.counters(evening)[0].pset.limits[0].key
    assert first.endswith(":2026-12-01")
    assert budgets.counters(evening + 30)[0].pset.limits[0].key == first
    assert budgets.counters(evening + 61)[0].pset.limits[0].key.endswith(":2026-12-02")
    assert budgets.retired == [first]  # its in-process counter is then forgotten


def test_the_default_ledger_needs_no_setup_and_a_budget_s_refusals_are_rows_too(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """`spend.ledger: {}`: a SQLite file in the working directory, created by the router."""
    import json
    import os
    import subprocess

    from router.testing.ledger import wait_for_rows
    from router.testing.server import cli_command

    work = tmp_path / "work"
    work.mkdir()
    path = work / "router.yaml"
    path.write_text(config(upstream.url, extra="spend: {ledger: {flush_interval: 0.05}}"))
    with RouterProcess(path, cwd=work) as router:
        answered, _ = _until_refused(_client(router), "pricey", max_tokens=10)
        url = f"sqlite:///{work}/llm-switchyard-usage.db"
        rows = wait_for_rows(url, answered + 1)
    assert sorted(r["status"] for r in rows) == [200] * answered + [429]
    assert [r["error"] for r in rows if r["status"] == 429] == ["budget_exceeded"]
    spent = sum(r["cost_nanos"] for r in rows)
    assert spent <= 50_000_000  # the budget: 0.05 USD
    env = {k: v for k, v in os.environ.items() if k != "LLM_ROUTER_CONFIG"}

    def usage(*args: str, cwd: Path = work) -> subprocess.CompletedProcess[str]:
        command = [cli_command(), "usage", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=60, env=env)

    report = usage("--config", "router.yaml", "--by", "", "--format", "json")
    totals = json.loads(report.stdout)["totals"]
    assert totals["requests"] == len(rows) and totals["cost_nanos"] == spent
    # in the router's working directory, `usage` finds the default ledger by itself
    bare = usage("--since", "7d", "--by", "key,model", "--format", "csv")
    assert bare.returncode == 0, bare.stderr
    assert "llm-switchyard-usage.db" in bare.stderr
    last = bare.stdout.strip().splitlines()[-1].split(",")
    assert last[0] == "total" and int(last[2]) == len(rows)
    elsewhere = usage(cwd=tmp_path)
    assert elsewhere.returncode == 2 and "give --config PATH" in elsewhere.stderr
