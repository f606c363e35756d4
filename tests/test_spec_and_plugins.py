"""The plugin API is pinned, and plugins are found the way third parties' would be."""

import subprocess
import sys
import textwrap

import pytest

import router.spec
from router import hookspecs
from router.cli import main
from router.config import ConfigError
from router.graph import load_graph
from router.plugins import provider_plugins

PINNED_SPEC = {
    "ContentPolicyViolation", "ContextLengthExceeded", "ErrorKind", "InsufficientQuota",
    "MalformedResponse", "Operation", "Provider", "ProviderConfig", "ProviderConfigError",
    "ProviderSettings", "RateLimitInfo", "RouterError", "Timeouts", "UpstreamAuthError",
    "UpstreamBadRequest", "UpstreamConnectionError", "UpstreamError", "UpstreamNotFound",
    "UpstreamPermissionError", "UpstreamRateLimited", "UpstreamResponse", "UpstreamServerError",
    "UpstreamTimeout", "UpstreamUnavailable", "classify_error", "extract_error", "hookimpl",
    "parse_rate_limit_headers", "parse_seconds",
}  # fmt: skip


def test_spec_all_is_pinned():
    """Plugins import only router.spec: names may be added here, never removed or renamed."""
    assert set(router.spec.__all__) == PINNED_SPEC
    for name in PINNED_SPEC:
        assert getattr(router.spec, name) is not None


def test_every_hook_is_documented():
    hooks = [name for name in dir(hookspecs) if name.startswith(("register_", "on_", "map_"))]
    assert hooks
    for name in hooks:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_builtin_providers_register_like_plugins():
    plugins = provider_plugins()
    assert {"openai", "mock"} <= set(plugins)
    assert plugins["mock"].distribution == "llm-router"


def test_plugins_command_lists_names_and_versions(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "mock\tllm-router " in out and "openai\tllm-router " in out


def test_config_naming_a_missing_plugin_names_the_package(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        textwrap.dedent(
            """
            server: {auth: none}
            providers: {t: {plugin: acme, base_url: "http://127.0.0.1:9"}}
            models: {m: {targets: [{provider: t, model: x}]}}
            """
        )
    )
    with pytest.raises(ConfigError, match="pip install llm-router-acme"):
        load_graph(str(path))


def test_schema_command_writes_the_schema(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["schema", "--output", str(out)]) == 0
    assert '"title": "llm-router config"' in out.read_text()


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("serve", "check", "schema", "plugins"):
        assert command in result.stdout
