"""`${ENV}` references: secrets stay out of the file, and resolve at load time."""

import pytest

from router.config import ConfigError, load_config_text
from router.graph import compile_graph

BASE = """
providers:
  up:
    plugin: openai
    base_url: "${UP_URL:-http://127.0.0.1:9}/v1"
    api_key: ${UP_KEY}
    headers: {X-Team: "team-${TEAM:-core}", X-Literal: "$${NOT_A_VAR}"}
models:
  chat: {targets: [{provider: up, model: m}]}
keys:
  app: {key: "${APP_KEY}"}
server:
  port: ${PORT:-4000}
"""


def test_references_resolve_with_defaults_and_escapes():
    env = {"UP_KEY": "sk-up", "APP_KEY": "sk-app", "PORT": "4100"}
    config, source = load_config_text(BASE, "router.yaml", env)
    provider = config.providers["up"]
    assert provider.base_url == "http://127.0.0.1:9/v1"
    assert provider.api_key.get_secret_value() == "sk-up"
    assert provider.headers == {"X-Team": "team-core", "X-Literal": "${NOT_A_VAR}"}
    assert config.server.port == 4100
    graph = compile_graph(config, source)
    assert graph.providers["up"].provider.headers["authorization"] == "Bearer sk-up"


def test_empty_variable_takes_the_default():
    env = {"UP_KEY": "k", "APP_KEY": "a", "UP_URL": ""}
    config, _ = load_config_text(BASE, "router.yaml", env)
    assert config.providers["up"].base_url == "http://127.0.0.1:9/v1"


def test_missing_variables_are_named_with_their_line():
    with pytest.raises(ConfigError) as info:
        load_config_text(BASE, "router.yaml", {})
    text = str(info.value)
    assert "router.yaml:6: providers.up.api_key: environment variable 'UP_KEY' is not set" in text
    assert "router.yaml:11: keys.app.key: environment variable 'APP_KEY' is not set" in text


def test_secrets_are_not_shown_when_the_config_is_printed():
    config, _ = load_config_text(BASE, "router.yaml", {"UP_KEY": "sk-up-secret", "APP_KEY": "a"})
    assert "sk-up-secret" not in repr(config)
    assert "sk-up-secret" not in config.model_dump_json()
