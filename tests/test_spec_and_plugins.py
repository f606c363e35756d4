"""The plugin API is pinned, and plugins are found the way third parties' would be."""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import router.spec
from router import hookspecs
from router.cli import main
from router.plugins import KNOWN_PLUGINS, provider_plugins

PINNED_SPEC = {
    "ContentPolicyViolation", "ContextLengthExceeded", "ErrorKind", "InsufficientQuota",
    "InvalidRequest", "MalformedResponse", "Operation", "Provider", "ProviderConfig",
    "ProviderConfigError",
    "ProviderSettings", "RateLimitInfo", "RouterError", "Timeouts", "UpstreamAuthError",
    "UpstreamBadRequest", "UpstreamConnectionError", "UpstreamError", "UpstreamNotFound",
    "UpstreamPermissionError", "UpstreamRateLimited", "UpstreamResponse", "UpstreamServerError",
    "UpstreamTimeout", "UpstreamUnavailable", "classify_error", "extract_error", "hookimpl",
    "parse_rate_limit_headers", "parse_seconds",
    # helpers the base behaviour is made of, so that plugins need not copy the core
    "error_class", "upstream_error", "stream_error", "parse_stream_event", "is_error_frame",
    "parse_int_header", "implied_status",
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
    assert plugins["mock"].distribution == "llm-switchyard"


def test_plugins_command_lists_names_and_versions(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "mock\tllm-switchyard " in out and "openai\tllm-switchyard " in out


MISSING_PLUGIN = """
server: {auth: none}
providers: {t: {plugin: %s, base_url: "http://127.0.0.1:9"}}
models: {m: {targets: [{provider: t, model: x}]}}
"""


def test_an_unknown_plugin_gets_no_package_suggestion(tmp_path, capsys):
    """A guessed package name is one anyone could register: point to the docs instead."""
    (tmp_path / "router.yaml").write_text(MISSING_PLUGIN % "acme")
    assert main(["check", str(tmp_path / "router.yaml")]) == 1
    err = capsys.readouterr().err
    assert "plugin 'acme' is not installed; it is not a plugin of this project" in err
    assert "docs/writing-a-plugin.md" in err
    assert "pip install" not in err
    assert "llm-switchyard-acme" not in err


def test_a_known_plugin_that_is_not_installed_names_its_package(tmp_path, capsys, monkeypatch):
    installed = {n: p for n, p in provider_plugins().items() if n != "telnyx"}
    monkeypatch.setattr("router.graph.providers.provider_plugins", lambda: installed)
    (tmp_path / "router.yaml").write_text(MISSING_PLUGIN % "telnyx")
    assert main(["check", str(tmp_path / "router.yaml")]) == 1
    assert "plugin 'telnyx' is not installed; to add it: pip install llm-switchyard-telnyx" in (
        capsys.readouterr().err
    )
    # a typo of a known plugin that is not installed is pointed at it
    (tmp_path / "router.yaml").write_text(MISSING_PLUGIN % "telnix")
    assert main(["check", str(tmp_path / "router.yaml")]) == 1
    assert "plugin 'telnix' is not installed (did you mean 'telnyx'?)" in capsys.readouterr().err


def test_distribution_names_are_spelled_in_one_table():
    """The project's plugin packages are named in `KNOWN_PLUGINS` only (a rename on PyPI is
    one edit), and the table matches the packages in plugins/."""
    root = Path(__file__).resolve().parents[1]
    published = {}
    for pyproject in (root / "plugins").glob("*/pyproject.toml"):
        if pyproject.parent.name != "_template":
            published[pyproject.parent.name] = tomllib.loads(pyproject.read_text())["project"][
                "name"
            ]
    assert published == KNOWN_PLUGINS
    spelled = re.compile("|".join(re.escape(d) for d in KNOWN_PLUGINS.values()))
    sources = [*(root / "router").rglob("*.py"), root / "README.md", *(root / "docs").glob("*.md")]
    assert [p.name for p in sources if spelled.search(p.read_text())] == ["plugins.py"]


def test_schema_command_writes_the_schema(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["schema", "--output", str(out)]) == 0
    assert '"title": "llm-switchyard config"' in out.read_text()


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("serve", "check", "schema", "plugins"):
        assert command in result.stdout


def test_the_command_says_its_version():
    """The README: `llm-switchyard --version` prints the installed version."""
    from importlib.metadata import version

    from router.testing.server import cli_command

    result = subprocess.run(
        [cli_command(), "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout == f"llm-switchyard {version('llm-switchyard')}\n"


def _router_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "router" or name.startswith("router.")}


def test_plugins_import_only_the_spec_and_their_test_kits_the_testing_kit():
    """The four plugins and the template import `router.spec` only; the test kits they ship
    (a `testing` module or package) may also import `router.testing`."""
    plugins = Path(__file__).resolve().parents[1] / "plugins"
    packages = [p for p in plugins.glob("*/llm_router_*") if p.is_dir()]
    assert len(packages) == 5
    for package in packages:
        for path in package.rglob("*.py"):
            kit = "testing" in path.relative_to(package).parts or path.stem == "testing"
            extra = {
                name
                for name in _router_imports(path)
                if name != "router.spec" and not (kit and name.startswith("router.testing"))
            }
            assert not extra, f"{path.relative_to(plugins)} imports {sorted(extra)}"
