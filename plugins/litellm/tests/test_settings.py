"""Settings and provider config are checked at load, with file:line:key errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from llm_router_litellm import LiteLLMProvider, LiteLLMSettings

from router.config.loader import ConfigError
from router.graph.load import load_graph
from router.plugins import provider_plugins

CONFIG = """\
providers:
  koboi:
    plugin: litellm
{provider}
models:
  chat:
    targets: [{{provider: koboi, model: openai/gpt-4o-mini}}]
keys:
  app: {{key: sk-client-1}}
"""


def load(tmp_path: Path, provider: str):
    path = tmp_path / "router.yaml"
    path.write_text(
        CONFIG.format(provider=textwrap.indent(textwrap.dedent(provider).strip("\n"), "    "))
    )
    return load_graph(str(path), {})


def load_error(tmp_path: Path, provider: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, provider)
    return str(caught.value)


def test_registered_through_the_entry_point():
    plugin = provider_plugins()["litellm"]
    assert plugin.provider_class is LiteLLMProvider
    assert plugin.distribution == "llm-switchyard-litellm"


def test_valid_config_loads(tmp_path):
    graph = load(
        tmp_path,
        """
        base_url: http://127.0.0.1:4000/v1
        api_key: sk-proxy
        settings: {auth_header: x-litellm-api-key, strip_fields: [metadata]}
        """,
    )
    provider = graph.providers["koboi"].provider
    assert isinstance(provider, LiteLLMProvider)
    assert provider.headers["x-litellm-api-key"] == "sk-proxy"


def test_base_url_is_required(tmp_path):
    message = load_error(tmp_path, "api_key: sk-proxy")
    assert "router.yaml:2: providers.koboi.base_url: required" in message


def test_unknown_setting_rejected(tmp_path):
    message = load_error(
        tmp_path,
        """
        base_url: http://127.0.0.1:4000/v1
        settings:
          auth_header: authorization
          bogus: 1
        """,
    )
    assert "router.yaml:7: providers.koboi.settings.bogus" in message


def test_bad_auth_header_rejected(tmp_path):
    message = load_error(
        tmp_path,
        """
        base_url: http://127.0.0.1:4000/v1
        api_key: sk-proxy
        settings: {auth_header: x-api-key}
        """,
    )
    assert "providers.koboi.settings.auth_header" in message


def test_raw_key_header_needs_a_key(tmp_path):
    message = load_error(
        tmp_path,
        """
        base_url: http://127.0.0.1:4000/v1
        settings: {auth_header: x-litellm-api-key}
        """,
    )
    assert "router.yaml:2: providers.koboi.api_key: auth_header 'x-litellm-api-key'" in message


def test_endpoint_url_instead_of_base_url_rejected(tmp_path):
    message = load_error(tmp_path, "base_url: http://127.0.0.1:4000/v1/chat/completions")
    assert "router.yaml:4: providers.koboi.base_url: give the proxy's base URL" in message


def test_essential_field_cannot_be_stripped(tmp_path):
    message = load_error(
        tmp_path,
        """
        base_url: http://127.0.0.1:4000/v1
        settings: {strip_fields: [metadata, messages]}
        """,
    )
    assert "providers.koboi.settings.strip_fields" in message
    assert "'messages' is needed by every request" in message


def test_every_setting_is_documented():
    for name, field in LiteLLMSettings.model_fields.items():
        assert field.description, name


def test_example_config_loads():
    example = Path(__file__).resolve().parents[3] / "examples" / "configs" / "litellm.yaml"
    assert example.read_text().startswith(
        "# yaml-language-server: $schema=../../schema/router.schema.json\n"
    )
    graph = load_graph(str(example), {"KOBOILLM_API_KEY": "sk-example"})
    alt = graph.providers["koboi-alt"].provider
    assert alt.headers["x-litellm-api-key"] == "sk-example"
    assert graph.routes["gpt-4o-mini"].fallbacks == ("claude-sonnet",)
