"""Every error the proxy can send reaches the OpenAI SDK as the right exception and envelope.

One router and one fake serve the whole module (starting a router per case would dominate
the run); each case queues its reply and checks that exactly one attempt was made.
"""

from __future__ import annotations

import openai
import pytest
from llm_router_litellm import testing as fake

from router.testing import FakeUpstream, RouterServer, closed_after_test

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]
CONFIG = """
providers:
  koboi:
    plugin: litellm
    base_url: {url}/v1
    api_key: sk-litellm-test-0042
models:
  chat:
    targets: [{{provider: koboi, model: openai/gpt-4o-mini}}]
    retries: {{attempts: 0}}
keys:
  app: {{key: sk-client-1}}
"""

AUTH = (openai.AuthenticationError, 401, "authentication_error", "upstream_authentication_failed")
NOT_FOUND = (openai.NotFoundError, 404, "invalid_request_error", "model_not_found")
BAD = (openai.BadRequestError, 400, "invalid_request_error", None)
LIMITED = (openai.RateLimitError, 429, "rate_limit_error", "rate_limit_exceeded")
SERVER = (openai.InternalServerError, 502, "server_error", "upstream_server_error")
EXPECTED = {
    "no_api_key": AUTH,
    "invalid_virtual_key": AUTH,
    "key_not_sk": AUTH,
    "no_db": AUTH,
    "upstream_auth": AUTH,
    "invalid_model": NOT_FOUND,
    "not_found": NOT_FOUND,
    "method_not_allowed": NOT_FOUND,
    "missing_messages": BAD,
    "malformed_json": BAD,
    "context_window": (
        openai.BadRequestError,
        400,
        "invalid_request_error",
        "context_length_exceeded",
    ),
    "content_policy": (
        openai.BadRequestError,
        400,
        "invalid_request_error",
        "content_policy_violation",
    ),
    "upstream_rate_limited": LIMITED,
    "key_rate_limited": LIMITED,
    "no_healthy_deployment": LIMITED,
    "budget_exceeded": (openai.RateLimitError, 429, "insufficient_quota", "insufficient_quota"),
    "upstream_unreachable": SERVER,
    "service_unavailable": (
        openai.InternalServerError,
        503,
        "server_error",
        "upstream_unavailable",
    ),
    "api_error": SERVER,
    "timeout": (openai.InternalServerError, 504, "timeout_error", "upstream_timeout"),
}
RETRY_AFTER = {"upstream_rate_limited": "7", "key_rate_limited": "60"}
PARAM = {"missing_messages": "messages", "malformed_json": "request_body"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    upstream = FakeUpstream().start()
    path = tmp_path_factory.mktemp("litellm") / "router.yaml"
    path.write_text(CONFIG.format(url=upstream.url))
    server = RouterServer(path).start()
    client = closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="sk-client-1", max_retries=0)
    )
    try:
        yield upstream, client
    finally:
        client.close()
        server.stop()
        upstream.stop()


def test_every_fake_error_is_covered():
    assert set(EXPECTED) == set(fake.ERRORS)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_error_reaches_the_sdk(setup, name, stream):
    upstream, client = setup
    upstream.reset()
    upstream.add(CHAT, fake.ERRORS[name]())
    exc_class, status, type_, code = EXPECTED[name]
    with pytest.raises(exc_class) as caught:
        result = client.chat.completions.create(model="chat", messages=MESSAGES, stream=stream)
        if stream:
            list(result)
    error = caught.value
    assert error.status_code == status
    assert error.body["type"] == type_
    assert error.body["code"] == code
    assert error.body["param"] == PARAM.get(name)
    text = error.response.text
    for leak in ("sk-litellm-test-0042", "0042", "sk-fake", "abcd", "Key Hash (Token) =9"):
        assert leak not in text
    assert "LiteLLM: model group" not in text
    if name in RETRY_AFTER:
        assert error.response.headers["retry-after"] == RETRY_AFTER[name]
    assert len(upstream.received(CHAT)) == 1


def test_content_policy_step_applies_to_litellm_refusals(tmp_path):
    """`on_failure.content_policy: next` sends LiteLLM's real refusal to the next target;
    before, the wrapper class won and the refusal passed for a plain bad request."""
    upstream = FakeUpstream().start()
    path = tmp_path / "router.yaml"
    path.write_text(
        CONFIG.format(url=upstream.url)
        .replace(
            "    retries: {attempts: 0}",
            "    retries: {attempts: 0}\n"
            "    on_failure: {content_policy: next}\n"
            "  other:\n"
            "    targets: [{provider: koboi, model: openai/other}]",
        )
        .replace(
            "targets: [{provider: koboi, model: openai/gpt-4o-mini}]",
            "targets: [{provider: koboi, model: openai/gpt-4o-mini}, "
            "{provider: koboi, model: anthropic/claude}]",
        )
    )
    server = RouterServer(path).start()
    try:
        upstream.add(CHAT, fake.content_policy())
        upstream.add(CHAT, fake.chat_response("judged fine"))
        client = closed_after_test(
            openai.OpenAI(base_url=server.base_url, api_key="sk-client-1", max_retries=0)
        )
        reply = client.chat.completions.create(model="chat", messages=MESSAGES)
        assert reply.choices[0].message.content == "judged fine"
        first, second = upstream.received(CHAT)
        assert first.json()["model"] == "openai/gpt-4o-mini"
        assert second.json()["model"] == "anthropic/claude"
    finally:
        server.stop()
        upstream.stop()
