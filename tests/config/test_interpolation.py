"""`${ENV}` references: secrets stay out of the file, and resolve at load time."""

import pytest

from router.cli import main
from router.config import ConfigError, load_config_text
from router.graph.compile import compile_graph

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


MALFORMED = [
    # (what was written, what the error says)
    ("${KOBOI_KEY:sk-literal-1}", "'${KOBOI_KEY:...}' is not a reference: a default is written"),
    ("${KOBOI-KEY}", "'${KOBOI-...}' is not a reference: a default is written ${KOBOI:-...}"),
    ("${KOBOI_KEY:=sk-literal-1}", "'${KOBOI_KEY:...}' is not a reference"),
    ("${}", "'${}' names no variable"),
    ("${1KEY}", "a variable name starts with a letter or '_'"),
    ("${KOBOI.KEY}", "a variable name has only letters, digits and '_'"),
    ("${KOBOI_KEY", "'${KOBOI_KEY' has no closing '}'"),
    ("${A:-${B}}", "a default cannot contain '${'"),
    ("Bearer ${TOKEN:sk-literal-1}", "'${TOKEN:...}' is not a reference"),
]


@pytest.mark.parametrize(("written", "why"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_reference_is_an_error_that_shows_the_right_form(written, why):
    text = BASE.replace("${UP_KEY}", f'"{written}"')
    env = {"UP_KEY": "k", "APP_KEY": "a", "KOBOI_KEY": "sk-real", "TOKEN": "t", "A": "", "B": ""}
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "router.yaml", env)
    message = str(info.value)
    assert "router.yaml:6: providers.up.api_key: '${" in message
    assert why in message
    assert len(info.value.issues) == 1
    assert "write ${NAME} or ${NAME:-default}, or $${ for a literal '${'" in message
    assert "sk-literal-1" not in message  # what follows the name may be a secret


@pytest.mark.parametrize("written", ["${KOBOI_KEY:default}", "${KOBOI-KEY}"])
def test_check_rejects_the_shell_forms_instead_of_using_them_as_the_key(
    tmp_path, capsys, monkeypatch, written
):
    monkeypatch.setenv("UP_KEY", "k")
    monkeypatch.setenv("APP_KEY", "a")
    monkeypatch.setenv("KOBOI_KEY", "sk-real")
    path = tmp_path / "router.yaml"
    path.write_text(BASE.replace("${UP_KEY}", f'"{written}"'))
    assert main(["check", str(path)]) == 1
    assert "providers.up.api_key: '${KOBOI" in capsys.readouterr().err


def test_the_escape_and_a_lone_dollar_stay_literal():
    text = BASE.replace("$${NOT_A_VAR}", "$${open and $$${NOT_A_VAR} and $5 and ${TEAM}$")
    env = {"UP_KEY": "k", "APP_KEY": "a", "TEAM": "t"}
    config, _ = load_config_text(text, "router.yaml", env)
    assert config.providers["up"].headers["X-Literal"] == "${open and $${NOT_A_VAR} and $5 and t$"


SECRETS = {
    "provider api_key": ("api_key: ${UP_KEY}", "api_key: ${S}", "providers.up.api_key"),
    "client key": ('key: "${APP_KEY}"', 'key: "${S}"', "keys.app.key"),
    "admin key": ("port: ${PORT:-4000}", "admin_key: ${S}", "server.admin_key"),
    "credential header": (
        'X-Team: "team-${TEAM:-core}"',
        'Authorization: "Bearer ${S}"',
        "providers.up.headers.Authorization",
    ),
    "rate-limit backend password": (
        "port: ${PORT:-4000}",
        'rate_limit_backend: {url: "redis://:${S}@127.0.0.1:6379/0"}',
        "server.rate_limit_backend.url",
    ),
}


@pytest.mark.parametrize(("old", "new", "key"), SECRETS.values(), ids=list(SECRETS))
def test_an_empty_secret_is_an_error_unless_the_config_gives_a_default(old, new, key):
    env = {"UP_KEY": "k", "APP_KEY": "a", "S": ""}
    with pytest.raises(ConfigError) as info:
        load_config_text(BASE.replace(old, new), "router.yaml", env)
    assert (
        f"{key}: environment variable 'S' is set but empty, and a secret cannot be empty "
        "(set it, or give a default: ${S:-...})"
    ) in str(info.value)
    # a default, even an empty one, is the config saying what an empty variable means
    for default in ("${S:-fallback}", "${S:-}"):
        load_config_text(BASE.replace(old, new.replace("${S}", default)), "router.yaml", env)


def test_an_empty_variable_outside_a_secret_is_allowed():
    text = BASE.replace("team-${TEAM:-core}", "team-${TEAM}").replace(
        "port: ${PORT:-4000}",
        'rate_limit_backend: {url: "redis://${USER}:pw-${PW}@127.0.0.1:6379/0"}',
    )
    env = {"UP_KEY": "k", "APP_KEY": "a", "TEAM": "", "USER": "", "PW": "x"}
    config, _ = load_config_text(text, "router.yaml", env)
    assert config.providers["up"].headers["X-Team"] == "team-"
