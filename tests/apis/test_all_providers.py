"""The Responses and Messages APIs over the combined example (`all-providers.yaml`): the
four seed providers speak chat completions only, each failing as its vendor does until
Tokligence answers, streamed and not, through `llm-router serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml

from router.testing import FakeUpstream, RouterProcess

litellm = pytest.importorskip("llm_router_litellm.testing")
telkom = pytest.importorskip("llm_router_telkom.testing")
telnyx = pytest.importorskip("llm_router_telnyx.testing")
tok = pytest.importorskip("llm_router_tokligence.testing")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "configs" / "all-providers.yaml"
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


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def router(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh router each time: each test starts with no target cooling or breaker open."""
    config = yaml.safe_load(EXAMPLE.read_text())
    bases = {
        "telkom": telkom.BASE_PATH,
        "telnyx": telnyx.API_ROOT,
        "koboi": "/koboi/v1",
        "tokligence": "/tok/v1",
    }
    for name, path in bases.items():
        config["providers"][name]["base_url"] = upstream.url + path
    config["models"]["chat"]["retries"]["attempts"] = 1
    path = tmp_path_factory.mktemp("all-providers") / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    served = RouterProcess(path, ENV).start()
    try:
        yield served
    finally:
        served.stop()


def failing_until_tokligence(upstream: FakeUpstream, answer: Any) -> None:
    upstream.reset()
    upstream.add(telkom.CHAT_PATH, telkom.rate_limited(retry_after=60))
    upstream.add(telnyx.CHAT_PATH, telnyx.service_unavailable(), telnyx.service_unavailable())
    upstream.add(KOBOI_CHAT, litellm.upstream_auth())
    upstream.add(TOK_CHAT, answer)


def walked(upstream: FakeUpstream) -> list[str]:
    return [r.path for r in upstream.requests]


FIRST = [telkom.CHAT_PATH, telnyx.CHAT_PATH, telnyx.CHAT_PATH, KOBOI_CHAT, TOK_CHAT]
# The second time, Telkom is still cooling down from its Retry-After: it is tried last.
SECOND = [telnyx.CHAT_PATH, telnyx.CHAT_PATH, telkom.CHAT_PATH, KOBOI_CHAT, TOK_CHAT]


def test_responses_fall_back_across_the_four_providers(router: Any, upstream: FakeUpstream) -> None:
    client = openai.OpenAI(base_url=router.base_url, api_key="sk-app-key", max_retries=0)
    failing_until_tokligence(upstream, tok.chat_reply("from tokligence"))
    raw = client.responses.with_raw_response.create(model="chat", input="hi")
    assert (raw.parse().status, raw.parse().output_text) == ("completed", "from tokligence")
    assert raw.headers["x-router-model"] == "chat-tokligence"
    assert raw.headers["x-served-by"] == "tokligence/gpt-4o-mini"
    assert raw.headers["x-router-attempts"] == "5"
    assert walked(upstream) == FIRST

    failing_until_tokligence(upstream, tok.chat_stream(["from ", "tokligence"]))
    with client.responses.stream(model="chat", input="hi") as events:
        final = events.get_final_response()
    assert (final.status, final.output_text) == ("completed", "from tokligence")
    assert walked(upstream) == SECOND
    # Tokligence's gateway takes no `stream_options`: it is not asked for usage.
    assert "stream_options" not in upstream.received(TOK_CHAT)[0].json()
    assert final.usage is not None and final.usage.output_tokens > 0  # estimated
    client.close()


def test_messages_fall_back_across_the_four_providers(router: Any, upstream: FakeUpstream) -> None:
    client = anthropic.Anthropic(base_url=router.url, api_key="sk-app-key", max_retries=0)
    hi: list[Any] = [{"role": "user", "content": "hi"}]
    failing_until_tokligence(upstream, tok.chat_reply("from tokligence"))
    raw = client.messages.with_raw_response.create(model="chat", max_tokens=32, messages=hi)
    block = raw.parse().content[0]
    assert block.type == "text" and block.text == "from tokligence"
    assert raw.headers["x-served-by"] == "tokligence/gpt-4o-mini"
    assert walked(upstream) == FIRST

    failing_until_tokligence(upstream, tok.chat_stream(["from ", "tokligence"]))
    with client.messages.stream(model="chat", max_tokens=32, messages=hi) as events:
        assert events.get_final_text() == "from tokligence"
    assert walked(upstream) == SECOND
    client.close()
