"""Access log, secrets, traces and metrics, through a real router and a fake upstream."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router.observability import tracing
from router.testing import (
    RouterProcess,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)

PROVIDER_KEY = "sk-prov-Zq8sVw2LmN4x"
CLIENT_KEY = "sk-client-Hk3Jd9Pq"
ADMIN_KEY = "adm-Rr7Tt5Yy3Uu"
WRONG_KEY = "sk-presented-but-wrong-Bb6"
CONFIG = """
server: {{admin_key: "${{ADMIN_KEY}}"}}
rate_limits:
  per-app: {{requests_per_minute: 100, tokens_per_minute: 100000}}
providers:
  bad: {{plugin: openai, base_url: "{url}/bad/v1", api_key: "${{PROVIDER_KEY}}"}}
  good: {{plugin: openai, base_url: "{url}/v1", api_key: "${{PROVIDER_KEY}}"}}
models:
  main:
    targets: [{{provider: bad, model: bad-model}}]
    retries: {{attempts: 0}}
    fallbacks: [backup]
  backup:
    targets: [{{provider: good, model: up-model}}]
    retries: {{attempts: 0}}
keys:
  app: {{key: "${{CLIENT_KEY}}", rate_limits: [per-app]}}
"""
SECRETS = {"PROVIDER_KEY": PROVIDER_KEY, "CLIENT_KEY": CLIENT_KEY, "ADMIN_KEY": ADMIN_KEY}


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url=url)))
    return path


def test_no_secret_is_logged_and_the_access_log_has_every_field(tmp_path, fake_upstream):
    # The failing upstream echoes the key it was sent, as some do.
    echo = json_reply(
        {"error": {"message": f"server broke for key {PROVIDER_KEY}", "type": "server_error"}},
        status=500,
    )
    fake_upstream.set_default("/bad/v1/chat/completions", echo)
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("ok", usage=(7, 3))))
    fake_upstream.add("/v1/chat/completions", sse_reply(chat_chunks(["a", "b"], usage=(4, 2))))
    router = RouterProcess(write_config(tmp_path, fake_upstream.url), env=SECRETS).start()
    try:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key=CLIENT_KEY, max_retries=0)
        )
        messages = [{"role": "user", "content": "hi"}]
        assert client.chat.completions.create(model="main", messages=messages).choices
        stream = client.chat.completions.create(model="main", messages=messages, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "ab"
        fake_upstream.add("/v1/chat/completions", echo)
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(model="backup", messages=messages)
        assert PROVIDER_KEY not in str(failed.value.body)
        wrong = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key=WRONG_KEY, max_retries=0)
        )
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="main", messages=messages)
        for key in (ADMIN_KEY, WRONG_KEY):
            admin = httpx.get(router.url + "/admin/config", headers={"x-api-key": key})
            assert ADMIN_KEY not in admin.text and PROVIDER_KEY not in admin.text
    finally:
        out, err = router.stop()
    logged = (out + err).decode()
    for secret in (*SECRETS.values(), WRONG_KEY):
        assert secret not in logged
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith(b"{")]
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) == 4, logged
    plain, streamed = requests[0], requests[1]
    for line, tokens in ((plain, (7, 3)), (streamed, (4, 2))):
        assert re.fullmatch(r"[0-9a-f]{24}", line["request_id"])
        assert line["key"] == "app" and line["model"] == "main" and line["status"] == 200
        assert line["provider"] == "good" and line["upstream_model"] == "up-model"
        assert line["answered_by"] == "backup"
        assert [a["target"] for a in line["attempts"]] == ["bad/bad-model", "good/up-model"]
        assert [a["outcome"] for a in line["attempts"]][1] == "ok"
        assert line["attempts"][0]["outcome"] != "ok"
        assert (line["prompt_tokens"], line["completion_tokens"]) == tokens
        assert 0 < line["ttft_ms"] <= line["latency_ms"]
    # what the policy had left after each admission, as the answer's headers said
    assert plain["rate_limit"]["remaining_requests"] == 99
    assert streamed["rate_limit"]["remaining_requests"] == 98
    assert 0 < streamed["rate_limit"]["remaining_tokens"] < 100000
    assert requests[3]["rate_limit"] is None  # refused before any policy applied
    assert streamed["stream"] is True
    assert requests[2]["status"] == 502 and requests[3]["status"] == 401


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.configure(exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.configure(None)


def test_spans_and_traceparent_reach_the_upstream(tmp_path, fake_upstream, spans):
    from router.testing import RouterServer

    fake_upstream.set_default("/bad/v1/chat/completions", json_reply({"error": {}}, status=503))
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("ok", usage=(7, 3))))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{trace_id}-00f067aa0ba902b7-01"
    with RouterServer(write_config(tmp_path, fake_upstream.url), SECRETS) as router:
        reply = httpx.post(
            router.base_url + "/chat/completions",
            json={"model": "main", "messages": [{"role": "user", "content": "x"}]},
            headers={"authorization": f"Bearer {CLIENT_KEY}", "traceparent": parent},
        )
        assert reply.status_code == 200
    finished = {s.name: s for s in spans.get_finished_spans()}
    request = finished["POST /v1/chat/completions"]
    first, second = finished["chat bad-model"], finished["chat up-model"]
    assert request.context.trace_id == int(trace_id, 16)
    assert request.parent.span_id == 0x00F067AA0BA902B7
    for attempt in (first, second):
        assert attempt.parent.span_id == request.context.span_id
        assert attempt.attributes["gen_ai.system"] == "openai"
    assert first.status.status_code.name == "ERROR"
    assert second.attributes["gen_ai.request.model"] == "up-model"
    assert second.attributes["gen_ai.response.model"] == "up-model"
    assert second.attributes["gen_ai.usage.input_tokens"] == 7
    assert second.attributes["gen_ai.usage.output_tokens"] == 3
    assert request.attributes["gen_ai.request.model"] == "main"
    assert request.attributes["gen_ai.usage.output_tokens"] == 3
    (seen,) = fake_upstream.received("/v1/chat/completions")
    sent = seen.headers["traceparent"].split("-")
    assert sent[1] == trace_id and int(sent[2], 16) == second.context.span_id


def test_traceparent_passes_through_with_tracing_off(router_server, fake_upstream):
    assert not tracing.enabled()
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("ok")))
    server = router_server(CONFIG.format(url=fake_upstream.url), SECRETS)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    reply = httpx.post(
        server.base_url + "/chat/completions",
        json={"model": "backup", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": CLIENT_KEY, "traceparent": parent, "tracestate": "a=b"},
    )
    assert reply.status_code == 200
    (seen,) = fake_upstream.received("/v1/chat/completions")
    assert seen.headers["traceparent"] == parent and seen.headers["tracestate"] == "a=b"


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_in_prometheus_format(router_server, fake_upstream):
    fake_upstream.set_default("/bad/v1/chat/completions", json_reply({"error": {}}, status=503))
    fake_upstream.set_default(
        "/v1/chat/completions", sse_reply(chat_chunks(["a", "b"], usage=(4, 2)))
    )
    server = router_server(CONFIG.format(url=fake_upstream.url), SECRETS)
    before = httpx.get(server.url + "/metrics").text
    client = closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0)
    )
    for _ in range(3):
        stream = client.chat.completions.create(
            model="main", messages=[{"role": "user", "content": "x"}], stream=True
        )
        assert list(stream)
    deadline = time.monotonic() + 5  # a stream is counted after its last byte is sent
    while True:
        after = httpx.get(server.url + "/metrics")
        done = _value(after.text, "llm_router_requests_total", model="main", status="200")
        if done - _value(before, "llm_router_requests_total", model="main", status="200") >= 3:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert after.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = after.text

    def grew(name: str, **labels: str) -> float:
        return _value(text, name, **labels) - _value(before, name, **labels)

    assert grew("llm_router_requests_total", model="main", status="200") == 3
    assert grew("llm_router_attempts_total", target="good/up-model", outcome="ok") == 3
    assert grew("llm_router_attempts_total", target="bad/bad-model") == 3
    assert grew("llm_router_fallbacks_total", model="main", to="backup") == 3
    assert grew("llm_router_time_to_first_token_seconds_count", model="main", stream="true") == 3
    assert grew("gen_ai_client_token_usage_sum", model="main", gen_ai_token_type="output") == 6
    assert grew("llm_router_request_duration_seconds_bucket", le="+Inf", model="main") == 3
    assert "# TYPE llm_router_request_duration_seconds histogram" in text


def test_otlp_export_when_configured(tmp_path, fake_upstream):
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, spans and metrics are pushed there (OTLP/HTTP)."""
    fake_upstream.set_default("/v1/traces", json_reply({}))
    fake_upstream.set_default("/v1/metrics", json_reply({}))
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("ok")))
    env = {
        **SECRETS,
        "OTEL_EXPORTER_OTLP_ENDPOINT": fake_upstream.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
    }
    with RouterProcess(write_config(tmp_path, fake_upstream.url), env=env) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key=CLIENT_KEY, max_retries=0)
        )
        client.chat.completions.create(model="backup", messages=[{"role": "user", "content": "x"}])
        deadline = time.monotonic() + 10
        while not (fake_upstream.received("/v1/traces") and fake_upstream.received("/v1/metrics")):
            assert time.monotonic() < deadline, "nothing exported over OTLP"
            time.sleep(0.05)
    (first, *_) = fake_upstream.received("/v1/traces")
    assert first.headers["content-type"] == "application/x-protobuf"
    assert b"gen_ai.request.model" in first.body and b"up-model" in first.body


def _lag_buckets(router: RouterProcess) -> dict[str, int]:
    text = httpx.get(router.url + "/metrics").text
    found = re.findall(
        r'^llm_router_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$', text, re.M
    )
    return {bound: int(count) for bound, count in found}


def test_the_event_loop_lag_shows_a_stalled_process(tmp_path, fake_upstream):
    """`llm_router_event_loop_lag_seconds`: a timer every 0.1 s; a process stopped for
    0.7 s (as a starved or frozen process is) shows it, once, between 0.5 and 1 s late."""
    import os
    import signal

    with RouterProcess(write_config(tmp_path, fake_upstream.url), env=SECRETS) as router:
        time.sleep(0.6)
        before = _lag_buckets(router)
        assert before["+Inf"] >= 3  # about ten a second
        os.kill(router.process.pid, signal.SIGSTOP)
        try:
            time.sleep(0.7)
        finally:
            os.kill(router.process.pid, signal.SIGCONT)
        time.sleep(0.3)
        after = _lag_buckets(router)
    assert after["+Inf"] > before["+Inf"]
    late = (after["1.0"] - after["0.5"]) - (before["1.0"] - before["0.5"])
    assert late == 1, (before, after)  # the one tick due while it was stopped
    assert after["+Inf"] - after["1.0"] == before["+Inf"] - before["1.0"]
