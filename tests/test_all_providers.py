"""The combined example: all four upstreams behind one router, falling back between them.

Each provider's base URL points at one fake upstream (under its own path) that answers the
way that vendor does: Telkom's gateway is over its quota, Telnyx is down, the LiteLLM proxy
refuses the router's key, and the Tokligence gateway answers.
"""

from pathlib import Path

import openai
import pytest
import yaml

from router.testing import RouterServer

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


@pytest.fixture
def router(fake_upstream, tmp_path):
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
    with RouterServer(path, ENV) as server:
        yield server


def test_fallbacks_across_all_four_providers(router, fake_upstream):
    fake_upstream.add(telkom.CHAT_PATH, telkom.rate_limited(retry_after=60))
    fake_upstream.add(telnyx.CHAT_PATH, telnyx.service_unavailable(), telnyx.service_unavailable())
    fake_upstream.add("/koboi/v1/chat/completions", llm_router_litellm.upstream_auth())
    fake_upstream.add(tok.CHAT_PATH.replace("/v1", "/tok/v1"), tok.chat_reply("from tokligence"))
    client = openai.OpenAI(base_url=router.base_url, api_key="sk-app-key", max_retries=0)
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
