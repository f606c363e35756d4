"""Warnings: configs that load but are almost surely wrong, and strict mode.

`llm-switchyard check` prints them (file:line:key, marked `warning:`) and exits 0; `--strict` and
`server.strict_config` make them errors. `llm-switchyard serve` logs them at start-up and on
reload, and with `server.strict_config` refuses to start, or to reload.
"""

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from router.cli import main
from router.testing import RouterProcess, free_port
from router.testing.server import cli_command

CLEAN = """\
server:
  admin_key: ${ADMIN_KEY}
  rate_limit_backend: {url: "redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0"}
providers:
  up:
    plugin: mock
    api_key: ${UP_KEY}
    headers: {Authorization: "Bearer ${UP_TOKEN}", X-Team: core}
models:
  chat: {targets: [{provider: up, model: m}], rate_limits: [per-model]}
keys:
  app: {key: "${APP_KEY}", models: ["ch*"]}
  ops: {sha256: "0000000000000000000000000000000000000000000000000000000000000000"}
rate_limits:
  per-model: {requests_per_minute: 100}
"""
ENV = {
    "ADMIN_KEY": "a-long-admin-key-0123456789",
    "REDIS_PASSWORD": "redis-pw",
    "UP_KEY": "sk-up",
    "UP_TOKEN": "tok",
    "APP_KEY": "sk-app",
}
# Each edit of CLEAN, and the warning it brings.
WARNINGS = {
    "inline provider api_key": (
        ("${UP_KEY}", "sk-inline-up"),
        "router.yaml:7: warning: providers.up.api_key: a secret written inline: reference it, "
        "`api_key: ${UPSTREAM_API_KEY}`",
    ),
    "inline credential header": (
        ("Bearer ${UP_TOKEN}", "Bearer tok-inline"),
        "router.yaml:8: warning: providers.up.headers.Authorization: a secret written inline",
    ),
    "inline client key": (
        ('"${APP_KEY}"', "sk-inline-app"),
        "router.yaml:12: warning: keys.app.key: a secret written inline: reference it, "
        "`key: ${APP_KEY}`, or give its `sha256` instead",
    ),
    "inline admin key": (
        ("${ADMIN_KEY}", "an-inline-admin-key-0123"),
        "router.yaml:2: warning: server.admin_key: a secret written inline",
    ),
    "inline backend password": (
        ("${REDIS_PASSWORD}", "hunter2"),
        "router.yaml:3: warning: server.rate_limit_backend.url: a secret written inline: "
        "reference the URL or its password",
    ),
    "key globs match no model": (
        ('models: ["ch*"]', 'models: ["gpt-*", "claude-*"]'),
        "router.yaml:12: warning: keys.app.models: matches no model, so this key can call nothing",
    ),
    "policy attached to nothing": (
        (", rate_limits: [per-model]", ""),
        "router.yaml:15: warning: rate_limits.per-model: policy attached to nothing",
    ),
    "short admin key": (
        ("${ADMIN_KEY}", "${SHORT_ADMIN_KEY}"),
        "router.yaml:2: warning: server.admin_key: shorter than 16 characters",
    ),
}


@pytest.fixture
def env(monkeypatch):
    for name, value in {**ENV, "SHORT_ADMIN_KEY": "admin-123"}.items():
        monkeypatch.setenv(name, value)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(text)
    return path


def test_a_clean_config_has_no_warnings(tmp_path, capsys, monkeypatch, env):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, CLEAN)
    assert main(["check", "--strict", "router.yaml"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "router.yaml: OK\n" in captured.out


@pytest.mark.parametrize(("edit", "warning"), WARNINGS.values(), ids=list(WARNINGS))
def test_check_warns_and_strict_mode_fails(tmp_path, capsys, monkeypatch, env, edit, warning):
    monkeypatch.chdir(tmp_path)
    text = CLEAN.replace(*edit)
    assert text != CLEAN
    _write(tmp_path, text)
    assert main(["check", "router.yaml"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(warning), captured.err
    assert len(captured.err.splitlines()) == 1
    assert "router.yaml: OK, 1 warning\n" in captured.out
    for secret in ("sk-inline-up", "tok-inline", "sk-inline-app", "hunter2", "admin-123"):
        assert secret not in captured.err

    error = warning.replace(": warning:", ":")
    assert main(["check", "--strict", "router.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(error) and err.rstrip().endswith("(an error with --strict)"), err

    _write(tmp_path, "server:\n  strict_config: true\n" + text.removeprefix("server:\n"))
    assert main(["check", "router.yaml"]) == 1
    err = capsys.readouterr().err
    assert "(an error with `server.strict_config`)" in err, err


def _serve_config(upstream_secret: str = '"${UP_KEY}"', strict: bool = False) -> str:
    return (
        "server:\n  admin_key: ${ADMIN_KEY}\n  watch_config: false  # reloads by request only\n"
        f"  strict_config: {str(strict).lower()}\n"
        f"providers:\n  up: {{plugin: mock, api_key: {upstream_secret}}}\n"
        "models:\n  chat: {targets: [{provider: up, model: m}]}\n"
        'keys:\n  app: {key: "${APP_KEY}"}\n'
    )


def test_serve_logs_warnings_at_start_up(tmp_path):
    path = _write(tmp_path, _serve_config(upstream_secret="sk-inline-up"))
    router = RouterProcess(path, env=ENV).start()
    _, err = router.stop()
    assert b'"event":"config_warning"' in err
    assert b"router.yaml:6: warning: providers.up.api_key: a secret written inline" in err
    assert b"sk-inline-up" not in err


def test_serve_with_strict_config_refuses_to_start_on_a_warning(tmp_path):
    path = _write(tmp_path, _serve_config(upstream_secret="sk-inline-up", strict=True))
    done = subprocess.run(
        [cli_command(), "serve", "--config", str(path), "--port", str(free_port())],
        env={**os.environ, **ENV},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert (
        b"router.yaml:6: providers.up.api_key: a secret written inline: reference it, "
        b"`api_key: ${UPSTREAM_API_KEY}` (an error with `server.strict_config`)"
    ) in done.stderr


def _reload(url: str) -> httpx.Response:
    return httpx.post(url + "/admin/reload", headers={"x-api-key": ENV["ADMIN_KEY"]}, timeout=10)


def test_reload_logs_warnings_and_strict_mode_rejects_them(tmp_path):
    path = _write(tmp_path, _serve_config(strict=True))
    router = RouterProcess(path, env=ENV).start()
    try:
        # strict: a warning makes the reload fail, and the active config keeps serving
        path.write_text(_serve_config(upstream_secret="sk-inline-up", strict=True))
        reply = _reload(router.url)
        assert reply.status_code == 400
        assert "providers.up.api_key: a secret written inline" in reply.text
        assert "(an error with `server.strict_config`)" in reply.text
        assert "sk-inline-up" not in reply.text
        # not strict: the reload succeeds and logs the warning
        path.write_text(_serve_config(upstream_secret="sk-inline-up", strict=False))
        assert _reload(router.url).json()["result"] == "reloaded"
    finally:
        _, err = router.stop()
    assert b'"event":"config_reload_failed"' in err
    assert err.count(b'"event":"config_warning"') == 1
    assert b'"trigger":"admin"' in err
    assert b"sk-inline-up" not in err
