"""The provider contract is explicit: every member of `Provider` is pinned here and documented
in the plugin guide, the router acts on what a plugin declares (never on which methods it
overrides), and hooks are called through pluggy, where tracing sees them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import openai
import pytest

import router.spec
from router.spec import Provider, ProviderConfig
from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_completion,
    closed_after_test,
    json_reply,
)

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"
SHOUT_SOURCE = Path(__file__).parent / "contract_plugin"

# Names may be added (with a row in the guide), never removed or renamed: plugins use them.
PINNED_MEMBERS = {
    # declared
    "settings_model", "default_base_url", "paths", "models_path", "operations",
    "stream_usage", "supports_continuation", "answers_pass_through", "stream_accept",
    # overridden
    "__init__", "auth_headers", "extra_headers", "transform_request", "transform_response",
    "transform_stream_event", "get_error", "get_stream_error", "get_rate_limit_info",
    "models_request", "transform_models", "continuation_body", "local_transport",
    # set by __init__
    "config", "name", "settings", "base_url", "headers", "urls",
    # the router's own
    "build_request", "plain_request",
}  # fmt: skip
CORE_ONLY = {"build_request", "plain_request"}


def _members() -> set[str]:
    """`Provider`'s public class members, the attributes an instance gets, and `__init__`."""
    instance = Provider(ProviderConfig(name="p", base_url="http://127.0.0.1:9/v1"))
    names = {n for n in dir(Provider) if not n.startswith("_")}
    return names | {n for n in vars(instance) if not n.startswith("_")} | {"__init__"}


def _documented() -> dict[str, str]:
    """The member tables of the guide's "Every member of `Provider`": name -> its row."""
    text = GUIDE.read_text()
    section = text.split("### Every member of `Provider`", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        found = re.match(r"\| `(\w+)", line)
        if found:
            rows[found.group(1)] = line
    return rows


def test_provider_members_are_pinned():
    """A member added to `Provider` is added here and to the guide: plugins rely on them."""
    assert _members() == PINNED_MEMBERS


def test_every_member_is_documented_and_the_core_ones_are_marked():
    rows = _documented()
    assert set(rows) == PINNED_MEMBERS
    for name in CORE_ONLY:
        assert "not an override point" in rows[name], name


def test_every_spec_helper_is_documented():
    guide = GUIDE.read_text()
    helpers = [
        name
        for name in router.spec.__all__
        if name[0].islower() and name != "hookimpl" and callable(getattr(router.spec, name))
    ]
    assert "upstream_error" in helpers and "parse_stream_event" in helpers
    for name in helpers:
        assert f"| `{name}(" in guide, name


@pytest.mark.parametrize("name", sorted(CORE_ONLY))
def test_the_core_request_builders_cannot_be_overridden(name):
    """Overriding one would be skipped on some paths: refused when the class is defined."""
    with pytest.raises(TypeError, match=f"overrides {name}"):
        type("Custom", (Provider,), {name: lambda self, *args, **kwargs: None})


def test_the_request_comes_from_declarations():
    """`extra_headers` sit under the config's headers and credentials; `stream_accept`
    decides a stream's `accept`, `None` keeping the provider's own."""

    class Regional(Provider):
        stream_accept = None

        def extra_headers(self) -> dict[str, str]:
            return {"X-Region": "eu", "X-Api-Version": "2"}

    config = ProviderConfig(
        name="p", base_url="http://127.0.0.1:9/v1", api_key="k", headers={"x-region": "us"}
    )
    provider = Regional(config)
    request = provider.plain_request(router.spec.Operation.CHAT, {}, "m", stream=True)
    assert request.headers["x-region"] == "us"  # the config's wins
    assert request.headers["x-api-version"] == "2"
    assert request.headers["authorization"] == "Bearer k"
    assert request.headers["accept"] == "application/json"
    streamed = Provider(config).build_request(router.spec.Operation.CHAT, {}, "m", stream=True)
    assert streamed.headers["accept"] == "text/event-stream"


def _install(site: Path) -> dict[str, str]:
    """The `shout` plugin as an installed distribution (an entry point in a dist-info folder
    on PYTHONPATH, beside its module); the environment that sees it."""
    info = site / "llm_router_shout-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llm-switchyard-shout\nVersion: 0.3\n"
    )
    (info / "entry_points.txt").write_text("[llm_router]\nshout = llm_router_shout\n")
    path = [str(site), str(SHOUT_SOURCE), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in path if p)}


def test_a_translation_declared_nowhere_is_never_skipped(tmp_path, fake_upstream: FakeUpstream):
    """A plugin overriding `transform_response` without declaring `answers_pass_through`
    has its answers encoded from what it returns, even an answer that lacks nothing."""
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("quiet please")))
    config = tmp_path / "router.yaml"
    config.write_text(
        "server: {auth: none}\n"
        f"providers: {{s: {{plugin: shout, base_url: '{fake_upstream.url}/v1'}}}}\n"
        "models: {m: {targets: [{provider: s, model: up}]}}\n"
    )
    with RouterProcess(config, env=_install(tmp_path / "site")) as served:
        client = closed_after_test(
            openai.OpenAI(base_url=served.base_url, api_key="x", max_retries=0)
        )
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert reply.choices[0].message.content == "QUIET PLEASE"


def test_tracing_shows_the_hook_calls(tmp_path):
    """`LLM_ROUTER_TRACE_PLUGINS=1` prints the hook calls pluggy makes; and a plugin's
    distribution is the one its entry point came from."""
    env = {**os.environ, **_install(tmp_path / "site"), "LLM_ROUTER_TRACE_PLUGINS": "1"}
    script = Path(sys.executable).with_name("llm-switchyard")
    listed = subprocess.run(
        [str(script), "plugins"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "register_providers [hook]" in listed.stdout
    assert "finish register_providers" in listed.stdout
    assert "shout\tllm-switchyard-shout 0.3" in listed.stdout
