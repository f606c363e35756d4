"""The combined example: all four upstreams behind one router, falling back between them.

Each provider's base URL points at one fake upstream (under its own path) that answers the
way that vendor does: Telkom's gateway is over its quota, Telnyx is down, the LiteLLM proxy
refuses the router's key, and the Tokligence gateway answers: for chat completions, and
for the Responses and Messages APIs (which the four speak through the router's translation
to chat completions), streamed and not. Each test has a fresh `llm-switchyard serve`, so that
no target is still cooling down or its breaker open from another test.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from router.testing import FakeUpstream, RouterProcess, closed_after_test

llm_router_litellm = pytest.importorskip("llm_router_litellm.testing")
telkom = pytest.importorskip("llm_router_telkom.testing")
telnyx = pytest.importorskip("llm_router_telnyx.testing")
tok = pytest.importorskip("llm_router_tokligence.testing")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "configs" / "all-providers.yaml"
ENV = {
    "TELKOM_API_KEY": "telkom-key-0123456789abcdef012345",
    "TELNYX_API_KEY": "KEY0123telnyx",
    "KOBOILLM_API_KEY": "sk-koboi-secret",
    "TOKLIGENCE_API_KEY": "tok_secret0123456789",
    "LLM_ROUTER_ADMIN_KEY": "admin-key-0123",
    "LLM_ROUTER_DEMO_KEY": "sk-app-key",
}


KOBOI_CHAT = "/koboi/v1/chat/completions"
TOK_CHAT = tok.CHAT_PATH.replace("/v1", "/tok/v1")


def failing_until_tokligence(upstream: FakeUpstream, answer: Any) -> None:
    upstream.reset()
    upstream.add(telkom.CHAT_PATH, telkom.rate_limited(retry_after=60))
    upstream.add(telnyx.CHAT_PATH, telnyx.service_unavailable(), telnyx.service_unavailable())
    upstream.add(KOBOI_CHAT, llm_router_litellm.upstream_auth())
    upstream.add(TOK_CHAT, answer)


def walked(upstream: FakeUpstream) -> list[str]:
    return [r.path for r in upstream.requests]


@pytest.fixture
def router(fake_upstream: FakeUpstream, tmp_path: Path) -> Iterator[RouterProcess]:
    config = yaml.safe_load(EXAMPLE.read_text())
    bases = {
        "telkom": telkom.BASE_PATH,
        "telnyx": telnyx.API_ROOT,
        "koboi": "/koboi/v1",
        "tokligence": "/tok/v1",
    }
    for name, path in bases.items():
        config["providers"][name]["base_url"] = fake_upstream.url + path
    config["models"]["chat"]["retries"]["attempts"] = 1
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    with RouterProcess(path, ENV) as server:
        yield server


def test_fallbacks_across_all_four_providers(router, fake_upstream):
    failing_until_tokligence(fake_upstream, tok.chat_reply("from tokligence"))
    client = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="sk-app-key", max_retries=0)
    )
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().choices[0].message.content == "from tokligence"
    assert raw.headers["x-router-model"] == "chat-tokligence"
    assert raw.headers["x-router-provider"] == "tokligence"
    assert raw.headers["x-served-by"] == "tokligence/gpt-4o-mini"
    # Telkom once (its Retry-After is longer than the router waits), Telnyx twice (one
    # retry), LiteLLM once (an auth refusal moves on), then Tokligence.
    assert raw.headers["x-router-attempts"] == "5"
    paths = [r.path for r in fake_upstream.requests]
    assert paths == [
        telkom.CHAT_PATH,
        telnyx.CHAT_PATH,
        telnyx.CHAT_PATH,
        "/koboi/v1/chat/completions",
        "/tok/v1/chat/completions",
    ]
    koboi = fake_upstream.received("/koboi/v1/chat/completions")[0]
    assert koboi.headers["x-litellm-tags"] == "app"
    assert fake_upstream.received(telkom.CHAT_PATH)[0].headers["x-api-key"] == ENV["TELKOM_API_KEY"]


FIRST = [telkom.CHAT_PATH, telnyx.CHAT_PATH, telnyx.CHAT_PATH, KOBOI_CHAT, TOK_CHAT]
# The second time, Telkom is still cooling down from its Retry-After: it is tried last.
SECOND = [telnyx.CHAT_PATH, telnyx.CHAT_PATH, telkom.CHAT_PATH, KOBOI_CHAT, TOK_CHAT]


def test_responses_fall_back_across_the_four_providers(
    router: Any, fake_upstream: FakeUpstream
) -> None:
    client = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="sk-app-key", max_retries=0)
    )
    failing_until_tokligence(fake_upstream, tok.chat_reply("from tokligence"))
    raw = client.responses.with_raw_response.create(model="chat", input="hi")
    assert (raw.parse().status, raw.parse().output_text) == ("completed", "from tokligence")
    assert raw.headers["x-router-model"] == "chat-tokligence"
    assert raw.headers["x-served-by"] == "tokligence/gpt-4o-mini"
    assert raw.headers["x-router-attempts"] == "5"
    assert walked(fake_upstream) == FIRST

    failing_until_tokligence(fake_upstream, tok.chat_stream(["from ", "tokligence"]))
    with client.responses.stream(model="chat", input="hi") as events:
        final = events.get_final_response()
    assert (final.status, final.output_text) == ("completed", "from tokligence")
    assert walked(fake_upstream) == SECOND
    # Tokligence's gateway takes no `stream_options`: it is not asked for usage.
    assert "stream_options" not in fake_upstream.received(TOK_CHAT)[0].json()
    assert final.usage is not None and final.usage.output_tokens > 0  # estimated
    client.close()


def test_messages_fall_back_across_the_four_providers(
    router: Any, fake_upstream: FakeUpstream
) -> None:
    client = closed_after_test(
        anthropic.Anthropic(base_url=router.url, api_key="sk-app-key", max_retries=0)
    )
    hi: list[Any] = [{"role": "user", "content": "hi"}]
    failing_until_tokligence(fake_upstream, tok.chat_reply("from tokligence"))
    raw = client.messages.with_raw_response.create(model="chat", max_tokens=32, messages=hi)
    block = raw.parse().content[0]
    assert block.type == "text" and block.text == "from tokligence"
    assert raw.headers["x-served-by"] == "tokligence/gpt-4o-mini"
    assert walked(fake_upstream) == FIRST

    failing_until_tokligence(fake_upstream, tok.chat_stream(["from ", "tokligence"]))
    with client.messages.stream(model="chat", max_tokens=32, messages=hi) as events:
        assert events.get_final_text() == "from tokligence"
    assert walked(fake_upstream) == SECOND
    client.close()
