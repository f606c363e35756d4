"""No object a provider plugin is handed shows a credential in its repr, its `vars` or a
traceback with locals; secret plugin settings are `SecretStr`, masked everywhere."""

from __future__ import annotations

import textwrap
import traceback
from pathlib import Path

import pytest
from pydantic import SecretStr

from router.graph.load import load_graph
from router.graph.masked import masked_config
from router.operations import registered
from router.plugins import ProviderPlugin, provider_plugins
from router.types import Operation
from router.upstream.provider import Provider, ProviderConfig, ProviderSettings, UpstreamResponse

pytest.importorskip("llm_router_litellm")
pytest.importorskip("llm_router_telkom")
pytest.importorskip("llm_router_telnyx")
pytest.importorskip("llm_router_tokligence")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "configs" / "all-providers.yaml"
ENV = {
    "TELKOM_API_KEY": "telkom-key-0123456789abcdef012345",
    "TELNYX_API_KEY": "KEY0123telnyx-Secret",
    "KOBOILLM_API_KEY": "sk-koboi-Secret-77",
    "TOKLIGENCE_API_KEY": "tok_secret0123456789",
    "LLM_ROUTER_ADMIN_KEY": "admin-key-0123",
    "LLM_ROUTER_DEMO_KEY": "sk-app-key-0123",
    "TENANT": "tenant-Token-55",
}
EXTRA = """
  openai-up:
    plugin: openai
    base_url: http://127.0.0.1:9/v1
    api_key: sk-openai-Secret-99
    headers: {x-tenant: "${TENANT}", Authorization: "Bearer hdr-Secret-123"}
"""
SECRETS = (*ENV.values(), "sk-openai-Secret-99", "hdr-Secret-123")


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    text = EXAMPLE.read_text().replace("\nproviders:\n", "\nproviders:" + EXTRA, 1)
    path = tmp_path_factory.mktemp("reprs") / "router.yaml"
    path.write_text(text)
    return load_graph(path, ENV)


def _assert_clean(shown: str) -> None:
    for secret in SECRETS:
        assert secret not in shown, shown


def _handed(provider: Provider) -> list[object]:
    """Everything the core hands a provider, or the provider builds for the core."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    op = next(o for o in registered() if o in provider.operations)
    echo = UpstreamResponse(401, {"x-echo": SECRETS[0]}, f"bad key {SECRETS[0]}".encode())
    return [
        provider,
        provider.config,
        provider.config.timeouts,
        provider.settings,
        provider.headers,
        provider.plain_request(op, dict(body), "m"),
        provider.plain_request(op, dict(body), "m", stream=True),
        provider.build_request(op, dict(body), "m"),
        echo,
        *vars(provider).values(),
    ]


def test_reprs_of_everything_a_plugin_is_handed_show_no_credential(graph):
    classes = {type(r.provider).__name__ for r in graph.providers.values()}
    assert {"LiteLLMProvider", "TelkomProvider", "TelnyxProvider", "TokligenceProvider"} < classes
    for runtime in graph.providers.values():
        provider = runtime.provider
        assert provider.config.api_key in SECRETS  # still a plain str for the plugin
        for item in _handed(provider):
            _assert_clean(repr(item))
            _assert_clean(str(item))
        _assert_clean(repr(vars(provider)))
    up = graph.providers["openai-up"].provider
    assert repr(up.config).count("'***'") == 3  # api_key and both header values
    assert up.headers["authorization"] == "Bearer sk-openai-Secret-99"  # (values unchanged)
    assert up.headers["x-tenant"] == ENV["TENANT"]


def test_a_traceback_with_locals_shows_no_credential(graph):
    def translate(config: ProviderConfig, provider: Provider, request: object) -> None:
        headers = provider.headers  # noqa: F841  (a local the traceback shows)
        response = UpstreamResponse(401, {}, b"echo")  # noqa: F841
        raise RuntimeError("the plugin failed")

    for runtime in graph.providers.values():
        provider = runtime.provider
        request = provider.plain_request(Operation.CHAT, {"messages": []}, "m")
        try:
            translate(provider.config, provider, request)
        except RuntimeError as exc:
            shown = "".join(
                traceback.TracebackException.from_exception(exc, capture_locals=True).format()
            )
        assert "headers = {" in shown and "config = ProviderConfig(" in shown
        _assert_clean(shown)


class VaultSettings(ProviderSettings):
    """A plugin's settings with a secret: declared `SecretStr`, the documented way."""

    region: str = "eu"
    token: SecretStr


class VaultProvider(Provider):
    settings_model = VaultSettings


VAULT = """
server: {auth: none}
providers:
  vault:
    plugin: vault-test
    base_url: http://127.0.0.1:9/v1
    settings: {token: vault-Token-Secret-1, region: eu}
models:
  chat: {targets: [{provider: vault, model: m}]}
"""


def test_secret_plugin_settings_are_masked_in_reprs_admin_output_and_errors(tmp_path):
    plugins = provider_plugins()
    plugins["vault-test"] = ProviderPlugin("vault-test", VaultProvider)
    try:
        path = tmp_path / "router.yaml"
        path.write_text(textwrap.dedent(VAULT))
        graph = load_graph(path)
    finally:
        del plugins["vault-test"]
    provider = graph.providers["vault"].provider
    assert provider.settings.token.get_secret_value() == "vault-Token-Secret-1"
    assert "vault-Token-Secret-1" not in repr(provider.config) + repr(provider.settings)
    shown = masked_config(graph)["providers"]["vault"]["settings"]
    assert shown == {"token": "***", "region": "eu"}
    assert "vault-Token-Secret-1" in graph.secrets
    assert graph.redactor.text("echo vault-Token-Secret-1") == "echo ***"


def test_masked_urls_in_reprs():
    config = ProviderConfig("p", "https://user:pass-Secret-1@host/v1?key=q-Secret-2")
    assert "https://***@host/v1?***" in repr(config)
    assert "https://***@host/v1?***" in repr(Provider(config))
