"""Secrets through `llm-switchyard serve` and `llm-switchyard explain`: an upstream that echoes the
key, a fragment of it or its sha256 (answer or mid-stream), and `${ENV}` header values."""

from __future__ import annotations

import hashlib
import os
import subprocess
import textwrap
import threading
from pathlib import Path

import httpx
import openai
import pytest

from router.testing import RouterProcess, chat_chunk, closed_after_test, json_reply, sse_reply
from router.testing.server import cli_command

UP_KEY = "sk-proj-Tq9xWv3LmZ8kPb2NcR7dYh4FsJ6gA1gU"
TAIL = UP_KEY[-4:]  # "A1gU": what fragments end with
DIGEST = hashlib.sha256(UP_KEY.encode()).hexdigest()
TENANT_TOKEN = "tnt-Vb5Nm8Qw2Er4"
CLIENT_KEY = "sk-client-Jk4Lp7Mn"
ADMIN_KEY = "adm-Xc3Vb6Nm9Qw"
ENV = {
    "UP_KEY": UP_KEY,
    "TENANT_TOKEN": TENANT_TOKEN,
    "REGION": "eu",  # short: masked in the config views, never searched for in free text
    "CLIENT_KEY": CLIENT_KEY,
    "ADMIN_KEY": ADMIN_KEY,
}
CONFIG = """
server: {{admin_key: "${{ADMIN_KEY}}", watch_config: false}}
providers:
  up: {{plugin: openai, base_url: "{url}/v1", api_key: "${{UP_KEY}}"}}
models:
  chat: {{targets: [{{provider: up, model: up-model}}], retries: {{attempts: 0}}}}
keys:
  app: {{key: "${{CLIENT_KEY}}"}}
header_rewrites:
  - {{scope: provider, name: up, set: {{x-tenant: "${{TENANT_TOKEN}}", x-region: "${{REGION}}"}}}}
  - {{scope: model, name: chat, copy: {{x-region: x-region-copy}}}}
  - {{set: {{x-team: blue}}}}
"""
MESSAGES = [{"role": "user", "content": "hi"}]
LEAKS = (UP_KEY, TAIL, DIGEST, DIGEST.upper(), TENANT_TOKEN, CLIENT_KEY, ADMIN_KEY)
# What upstreams really echo: OpenAI's 401 (current and older key formats), LiteLLM's
# abbreviation, a head-and-tail form, and the key's sha256 in both cases.
ECHOES = {
    "openai": "Incorrect API key provided: sk-proj-" + "*" * 40 + TAIL + ". You can find "
    "your API key at https://platform.openai.com/account/api-keys.",
    "openai-legacy": f"Incorrect API key provided: {UP_KEY[:8]}{'*' * 28}{TAIL}.",
    "litellm": f"Invalid proxy server token passed. Received API Key = sk-...{TAIL}, "
    f"Key Hash (Token) ={DIGEST}.",
    "tail-only": f"credential ...{TAIL} was revoked",
    "head-and-tail": f"credential Tq9x****{TAIL} was revoked",
    "digest": f"no key with hash {DIGEST} (upper: {DIGEST.upper()})",
    "whole": f"key {UP_KEY} refused",
}


def openai_401(message: str) -> dict[str, object]:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from router.testing import FakeUpstream

    folder = tmp_path_factory.mktemp("secrets")
    with FakeUpstream() as upstream:
        path = folder / "router.yaml"
        path.write_text(textwrap.dedent(CONFIG.format(url=upstream.url)))
        router = RouterProcess(path, env=ENV).start()
        try:
            yield upstream, router
        finally:
            router.stop()


def _client(router: RouterProcess) -> openai.OpenAI:
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key=CLIENT_KEY, max_retries=0)
    )


@pytest.mark.parametrize("echo", sorted(ECHOES))
def test_an_upstream_error_echoing_the_key_reaches_the_client_without_it(served, echo):
    upstream, router = served
    upstream.add("/v1/chat/completions", json_reply(openai_401(ECHOES[echo]), status=401))
    with pytest.raises(openai.AuthenticationError) as failed:
        _client(router).chat.completions.create(model="chat", messages=MESSAGES)
    text = failed.value.response.text
    for leak in LEAKS:
        assert leak not in text
    message = failed.value.body["message"]
    assert message.startswith("upstream 'up' returned 401: ") and "***" in message


def test_an_error_inside_a_200_reaches_the_client_without_the_key(served):
    upstream, router = served
    upstream.add("/v1/chat/completions", json_reply(openai_401(ECHOES["openai-legacy"])))
    # (`invalid_api_key`: the upstream's 401, as the same body under that status is)
    with pytest.raises(openai.AuthenticationError) as failed:
        _client(router).chat.completions.create(model="chat", messages=MESSAGES)
    assert "Incorrect API key provided: ***." in failed.value.body["message"]
    for leak in LEAKS:
        assert leak not in failed.value.response.text


@pytest.mark.parametrize("echo", ["openai", "litellm", "digest"])
def test_a_mid_stream_error_echoing_the_key_reaches_the_client_without_it(served, echo):
    upstream, router = served
    release = threading.Event()  # the error frame waits until the client has the first chunk
    frames = [chat_chunk({"role": "assistant", "content": "Hel"}), openai_401(ECHOES[echo])]
    upstream.add("/v1/chat/completions", sse_reply(frames, release=release))
    stream = _client(router).chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    chunks = iter(stream)
    assert next(chunks).choices[0].delta.content == "Hel"
    release.set()
    with pytest.raises(openai.APIError) as failed:
        next(chunks)
    said = f"{failed.value} {failed.value.body}"
    assert "failed mid-stream" in said and "***" in said
    for leak in LEAKS:
        assert leak not in said


def test_admin_config_and_logs_show_no_secret_nor_env_value(tmp_path, fake_upstream):
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url=fake_upstream.url)))
    router = RouterProcess(path, env=ENV).start()
    upstream = fake_upstream
    upstream.add("/v1/chat/completions", json_reply(openai_401(ECHOES["litellm"]), status=401))
    with pytest.raises(openai.AuthenticationError):
        _client(router).chat.completions.create(model="chat", messages=MESSAGES)
    sent = upstream.received("/v1/chat/completions")[-1].headers
    assert (sent["x-tenant"], sent["x-region"]) == (TENANT_TOKEN, "eu")  # sent as configured
    try:
        reply = httpx.get(router.url + "/admin/config", headers={"x-api-key": ADMIN_KEY})
    finally:
        out, err = router.stop()
    assert reply.status_code == 200
    for leak in LEAKS:
        assert leak not in reply.text
    config = reply.json()["config"]
    # Every field that came from `${ENV}` is masked, however short its value.
    assert config["header_rewrites"][0]["set"] == {"x-tenant": "***", "x-region": "***"}
    assert config["header_rewrites"][1]["copy"] == {"x-region": "x-region-copy"}  # as written
    assert config["providers"]["up"]["api_key"] == "***"
    assert config["keys"]["app"]["key"] == "***"
    logged = (out + err).decode()
    assert '"status":401' in logged  # the access log line of the failed request
    for leak in LEAKS:
        assert leak not in logged


def test_explain_masks_header_values_from_env(tmp_path: Path):
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url="http://127.0.0.1:9")))
    done = subprocess.run(
        [cli_command(), "explain", "--config", str(path), "--model", "chat"],
        env={**os.environ, **ENV},
        capture_output=True,
        timeout=60,
    )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert "    x-tenant: ***" in out
    assert "    x-region: ***" in out  # two characters, masked because it came from `${REGION}`
    assert "    x-region-copy: ***" in out  # followed through the copy
    assert "    x-team: blue" in out  # written in the file: shown
    assert "    authorization: ***" in out
    for leak in LEAKS:
        assert leak not in out


def test_traces_carry_no_secret(tmp_path, fake_upstream):
    """A guard (spans hold no upstream text today): with tracing on, an echoing upstream's
    failure leaves no secret in any span's attributes, events or status."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from router.observability import tracing
    from router.testing import RouterServer

    exporter = InMemorySpanExporter()
    tracing.configure(exporter, batch=False)
    try:
        path = tmp_path / "router.yaml"
        path.write_text(textwrap.dedent(CONFIG.format(url=fake_upstream.url)))
        for echo in ("openai", "litellm", "digest"):
            fake_upstream.add("/v1/chat/completions", json_reply(openai_401(ECHOES[echo]), 401))
        with RouterServer(path, ENV) as router:
            for _ in range(3):
                with pytest.raises(openai.AuthenticationError):
                    _client(router).chat.completions.create(model="chat", messages=MESSAGES)
    finally:
        tracing.configure(None)
    spans = exporter.get_finished_spans()
    assert len(spans) == 6  # a request span and an attempt span per request
    shown = " ".join(
        f"{s.name} {dict(s.attributes or {})} {s.status.description} "
        f"{[(e.name, dict(e.attributes or {})) for e in s.events]}"
        for s in spans
    )
    assert "upstream_authentication_failed" in shown
    for leak in LEAKS:
        assert leak not in shown


def test_logs_with_many_secrets_show_none_of_them(tmp_path, fake_upstream):
    """Past a dozen secrets a log line is searched by its pieces, not secret by secret
    (`router.observability.needles`): through `llm-switchyard serve`, with forty client keys
    from `${ENV}`, a client that sends another team's key as its request id (which the
    access log records) and as its model name leaves none of them in the logs."""
    keys = {f"TEAM_KEY_{i:02d}": f"sk-team-{i:02d}-Qx7Lm2Vb9Nc4Wd8" for i in range(40)}
    lines = "".join(f'  team{i:02d}: {{key: "${{TEAM_KEY_{i:02d}}}"}}\n' for i in range(40))
    app = '  app: {key: "${CLIENT_KEY}"}\n'
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url=fake_upstream.url)).replace(app, app + lines))
    router = RouterProcess(path, env={**ENV, **keys}).start()
    fake_upstream.add("/v1/chat/completions", json_reply(openai_401(ECHOES["whole"]), status=401))
    pasted = keys["TEAM_KEY_17"]
    client = _client(router)
    try:
        for model in ("chat", pasted):
            with pytest.raises(openai.APIStatusError):
                client.chat.completions.create(
                    model=model, messages=MESSAGES, extra_headers={"x-request-id": pasted}
                )
    finally:
        out, err = router.stop()
    logged = (out + err).decode()
    assert logged.count('"request_id":"***"') == 2  # both requests' access lines, masked
    for leak in (*LEAKS, *keys.values()):
        assert leak not in logged
