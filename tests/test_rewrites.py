"""Header rewrite rules: what the fake upstream and the client see, and what loading refuses."""

from __future__ import annotations

import httpx
import pytest

from router.config.loader import ConfigError
from router.graph.load import load_graph
from router.graph.rewrites import explain_request_headers
from router.testing import chat_chunks, chat_completion, json_reply, sse_reply

CONFIG = """
server:
  auth: keys
  forward_client_headers: [x-trace-id]
providers:
  up: {{plugin: openai, base_url: {url}/v1, api_key: sk-upstream-secret}}
models:
  chat: {{targets: [{{provider: up, model: up-model}}]}}
keys:
  app: {{key: sk-client}}
header_rewrites:
  - {{set: {{x-team: platform, x-caller: "{{key}}/{{model}}"}}}}
  - {{scope: provider, name: up, set: {{x-region: "${{REGION}}"}}}}
  - {{scope: provider, name: up, append: {{x-team: "via-{{provider}}"}}}}
  - {{scope: model, name: chat, copy: {{x-request-id: x-correlation-id}}}}
  - {{scope: key, name: app, rename: {{x-trace-id: x-upstream-trace}}}}
  - {{scope: model, name: chat, set: {{x-drop-me: "1", x-upstream: "{{upstream_model}}"}}}}
  - {{scope: key, name: app, remove: [x-drop-me]}}
  - {{direction: response, set: {{x-served-by: "{{provider}}:{{upstream_model}}"}}}}
  - {{direction: response, scope: key, name: app, remove: [x-router-attempts]}}
  - {{direction: response, scope: model, name: chat, rename: {{x-router-model: x-model}}}}
  - {{direction: response, scope: model, name: chat, append: {{x-served-by: "{{{{literal}}}}"}}}}
"""


def _server(fake_upstream, router_server):
    return router_server(CONFIG.format(url=fake_upstream.url), environ={"REGION": "eu-1"})


def _post(server, stream=False, **headers):
    body = {"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": stream}
    return httpx.post(
        server.base_url + "/chat/completions",
        json=body,
        headers={"authorization": "Bearer sk-client", **headers},
    )


def test_request_rules_reach_the_upstream(fake_upstream, router_server):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    server = _server(fake_upstream, router_server)
    _post(
        server,
        **{
            "x-request-id": "req-42",
            "x-trace-id": "t-1",
            "x-secret-client": "no",
            "x-team": "spoofed",
        },
    )
    (seen,) = fake_upstream.received()
    h = seen.headers
    assert h["authorization"] == "Bearer sk-upstream-secret"  # the client's key never passes
    assert h["x-request-id"] == "req-42"
    assert h["x-team"] == "platform, via-up"  # set globally, appended by the provider rule
    assert h["x-caller"] == "app/chat"
    assert h["x-region"] == "eu-1"
    assert h["x-correlation-id"] == "req-42"
    assert h["x-upstream-trace"] == "t-1" and "x-trace-id" not in h
    assert h["x-upstream"] == "up-model"
    assert "x-drop-me" not in h
    assert "x-secret-client" not in h  # not on the allow-list
    ours = {
        "authorization",
        "x-request-id",
        "x-team",
        "x-caller",
        "x-region",
        "x-correlation-id",
        "x-upstream-trace",
        "x-upstream",
    }
    standard = {"host", "content-length", "content-type", "accept", "accept-encoding"}
    assert set(h) - standard == ours


@pytest.mark.parametrize("stream", [False, True])
def test_response_rules_reach_the_client(fake_upstream, router_server, stream):
    reply = sse_reply(chat_chunks()) if stream else json_reply(chat_completion())
    fake_upstream.set_default("/v1/chat/completions", reply)
    server = _server(fake_upstream, router_server)
    response = _post(server, stream=stream)
    assert response.status_code == 200
    h = response.headers
    assert h["x-served-by"] == "up:up-model, {literal}"
    assert h["x-model"] == "chat" and "x-router-model" not in h
    assert "x-router-attempts" not in h
    assert len(h["x-request-id"]) == 24  # generated, and returned


def test_response_rules_apply_to_errors_and_request_id_is_returned(fake_upstream, router_server):
    fake_upstream.set_default(
        "/v1/chat/completions",
        json_reply({"error": {"message": "nope", "type": "invalid_request_error"}}, status=400),
    )
    server = _server(fake_upstream, router_server)
    response = _post(server, **{"x-request-id": "abc-1"})
    assert response.status_code == 400
    assert response.headers["x-request-id"] == "abc-1"
    assert response.headers["x-served-by"].startswith(":")  # no provider answered


def test_explain_lists_headers_with_secrets_masked(fake_upstream, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(CONFIG.format(url=fake_upstream.url))
    graph = load_graph(str(path), {"REGION": "eu-1"})
    (headers,) = explain_request_headers(graph, "chat", "app").values()
    assert headers["authorization"] == "***"
    assert headers["x-region"] == "***"  # from `${REGION}`: a secret, however short
    assert headers["x-caller"] == "app/chat"
    assert headers["x-request-id"] == headers["x-correlation-id"] == "<request-id>"
    assert "sk-upstream-secret" not in repr(headers)


BAD = """
server: {{auth: none, forward_client_headers: {forward}}}
providers:
  up: {{plugin: openai, base_url: http://127.0.0.1:9/v1}}
models:
  chat: {{targets: [{{provider: up, model: m}}]}}
header_rewrites:
  - {rule}
"""


@pytest.mark.parametrize(
    ("rule", "forward", "message"),
    [
        ('{set: {x-a: "a\\r\\nx-b: b"}}', "[]", "CR, LF"),
        ("{set: {connection: close}}", "[]", "hop-by-hop"),
        ("{remove: [transfer-encoding]}", "[]", "hop-by-hop"),
        ("{set: {authorization: x}}", "[]", "credential"),
        ("{copy: {x-trace: authorization}}", "[]", "credential"),
        ("{rename: {x-request-id: x-other}}", "[]", "set by the router"),
        ('{set: {x-a: "{keys}"}}', "[]", "did you mean 'key'"),
        ("{scope: model, name: chatt, set: {x-a: b}}", "[]", "did you mean 'chat'"),
        ('{set: {"bad name": b}}', "[]", "not a valid header name"),
        ("{set: {x-a: b}, remove: [x-b]}", "[]", "exactly one of"),
        ("{set: {x-a: b}}", "[authorization]", "credential"),
        ("{set: {x-a: b}}", "[host]", "hop-by-hop"),
    ],
)
def test_unsafe_rules_are_load_errors(tmp_path, rule, forward, message):
    path = tmp_path / "r.yaml"
    path.write_text(BAD.format(rule=rule, forward=forward))
    with pytest.raises(ConfigError) as info:
        load_graph(str(path))
    assert message in str(info.value)
    assert f"{path}:" in str(info.value)
