"""Config load: the plugin's checks surface as `file:line: providers.<name>.<key>: message`."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from llm_router_tokligence import TokligenceProvider

from router.config.loader import ConfigError
from router.graph.load import load_graph

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "configs" / "tokligence.yaml"
CONFIG = """\
server: {{auth: none}}
providers:
  tok:
    plugin: tokligence
    base_url: http://127.0.0.1:8081/v1
    api_key: {key}
    settings: {settings}
models:
  chat:
    targets: [{{provider: tok, model: gpt-4o-mini}}]
"""


def _load(tmp_path: Path, key: str = "tok_ok", settings: str = "{}") -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(key=key, settings=settings))
    load_graph(str(path), {})


def test_wrong_key_prefix_is_reported_with_file_line_and_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, key="sk-proj-very-secret")
    message = str(info.value)
    assert f"{tmp_path / 'router.yaml'}:6: providers.tok.api_key: not a Tokligence key" in message
    assert "`tk-`" in message and "`tok_`" in message
    assert "sk-proj-very-secret" not in message


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ("{embedings: false}", "providers.tok.settings.embedings"),
        ("{auth_header: cookie}", "providers.tok.settings.auth_header"),
    ],
)
def test_bad_settings_are_reported(tmp_path, settings, where):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, settings=settings)
    assert f":7: {where}" in str(info.value)


def test_example_config_loads():
    assert EXAMPLE.read_text().startswith(
        "# yaml-language-server: $schema=../../schema/router.schema.json\n"
    )
    graph = load_graph(str(EXAMPLE), {"TOKLIGENCE_API_KEY": "tok_example"})
    assert {type(r.provider) for r in graph.providers.values()} == {TokligenceProvider}
    assert graph.providers["tokligence"].provider.headers["authorization"] == "Bearer tok_example"
    assert set(graph.routes) == {"chat", "chat-small", "embed"}


def test_example_config_passes_the_cli_check():
    env = {**os.environ, "TOKLIGENCE_API_KEY": "tk-example"}
    done = subprocess.run(
        [sys.executable, "-m", "router.cli", "check", str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def test_config_template_is_valid(tmp_path):
    _load(tmp_path)
    _load(tmp_path, key="tk-ok", settings=textwrap.dedent("{auth_header: x-api-key}"))
