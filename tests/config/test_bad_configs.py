"""A table of bad configs: `llm-switchyard check` rejects each with a file:line:key message."""

import textwrap

import pytest

from router.cli import main

GOOD_PROVIDER = """\
providers:
  telkom: {plugin: openai, base_url: "http://127.0.0.1:9/v1"}
"""
GOOD_MODELS = """\
models:
  chat: {targets: [{provider: telkom, model: m}]}
"""
GOOD_KEYS = """\
keys:
  app: {key: sk-test-key}
"""

CASES = [
    (
        "unknown provider with suggestion",
        GOOD_PROVIDER
        + "models:\n  chat:\n    targets:\n      - {provider: telkom, model: a}\n"
        + "      - {provider: telkm, model: b}\n"
        + GOOD_KEYS,
        "router.yaml:7: models.chat.targets[1].provider: unknown provider 'telkm' "
        "(did you mean 'telkom'?)",
    ),
    (
        "unknown top-level key",
        GOOD_PROVIDER + GOOD_MODELS + GOOD_KEYS + "modles: {}\n",
        "router.yaml:7: modles: unknown key 'modles' (did you mean 'models'?)",
    ),
    (
        "unknown nested key",
        GOOD_PROVIDER + "models:\n  chat:\n    targets: [{provider: telkom, model: m}]\n"
        "    retrys: {attempts: 1}\n" + GOOD_KEYS,
        "router.yaml:6: models.chat.retrys: unknown key 'retrys' (did you mean 'retries'?)",
    ),
    (
        "missing environment variable",
        GOOD_PROVIDER + GOOD_MODELS + "keys:\n  app: {key: '${LLM_ROUTER_TEST_UNSET_VAR}'}\n",
        "router.yaml:6: keys.app.key: environment variable 'LLM_ROUTER_TEST_UNSET_VAR' is not set",
    ),
    (
        "empty route",
        GOOD_PROVIDER + "models:\n  chat: {targets: []}\n" + GOOD_KEYS,
        "router.yaml:4: models.chat.targets: must not be empty",
    ),
    (
        "fallback cycle",
        GOOD_PROVIDER
        + "models:\n  a: {targets: [{provider: telkom, model: m}], fallbacks: [b]}\n"
        + "  b: {targets: [{provider: telkom, model: m}], fallbacks: [a]}\n"
        + GOOD_KEYS,
        "router.yaml:5: models.b.fallbacks[0]: fallback cycle: a -> b -> a",
    ),
    (
        "unknown fallback model",
        GOOD_PROVIDER
        + "models:\n  chat: {targets: [{provider: telkom, model: m}], fallbacks: [chta]}\n"
        + GOOD_KEYS,
        "router.yaml:4: models.chat.fallbacks[0]: unknown model 'chta'",
    ),
    (
        "unknown context fallback",
        GOOD_PROVIDER
        + "models:\n  chat:\n    targets: [{provider: telkom, model: m}]\n"
        + "    context_fallback: big\n"
        + GOOD_KEYS,
        "router.yaml:6: models.chat.context_fallback: unknown model 'big'",
    ),
    (
        "duplicate model name",
        GOOD_PROVIDER
        + "models:\n  chat: {targets: [{provider: telkom, model: m}]}\n"
        + "  chat: {targets: [{provider: telkom, model: n}]}\n"
        + GOOD_KEYS,
        "router.yaml:5: models.chat: duplicate key (each name must be unique)",
    ),
    (
        "plugin not installed",
        "providers:\n  p: {plugin: nosuchplugin, base_url: 'http://127.0.0.1:9'}\n"
        + "models:\n  chat: {targets: [{provider: p, model: m}]}\n"
        + GOOD_KEYS,
        "router.yaml:2: providers.p.plugin: plugin 'nosuchplugin' is not installed; "
        "it is not a plugin of this project",
    ),
    (
        "plugin settings validated by the plugin",
        "providers:\n  p:\n    plugin: mock\n    settings:\n      wrods: 3\n"
        + "models:\n  chat: {targets: [{provider: p, model: m}]}\n"
        + GOOD_KEYS,
        "router.yaml:5: providers.p.settings.wrods: unknown key 'wrods' (did you mean 'words'?)",
    ),
    (
        "bad base_url",
        "providers:\n  p: {plugin: openai, base_url: 'ftp://x'}\n"
        + GOOD_MODELS.replace("telkom", "p")
        + GOOD_KEYS,
        "router.yaml:2: providers.p.base_url: must start with http:// or https://",
    ),
    (
        "header with a line break",
        "providers:\n  p:\n    plugin: openai\n    base_url: 'http://127.0.0.1:9'\n"
        + '    headers: {X-A: "a\\r\\nX-Injected: 1"}\n'
        + GOOD_MODELS.replace("telkom", "p")
        + GOOD_KEYS,
        "router.yaml:5: providers.p.headers: header 'X-A' contains a line break or NUL",
    ),
    (
        "key with both key and sha256",
        GOOD_PROVIDER + GOOD_MODELS + "keys:\n  app: {key: sk-a, sha256: " + "a" * 64 + "}\n",
        "router.yaml:6: keys.app: give exactly one of `key` or `sha256`",
    ),
    (
        "malformed sha256",
        GOOD_PROVIDER + GOOD_MODELS + "keys:\n  app: {sha256: abc}\n",
        "router.yaml:6: keys.app.sha256: String should match pattern",
    ),
    (
        "two keys with the same secret",
        GOOD_PROVIDER + GOOD_MODELS + "keys:\n  a: {key: sk-same}\n  b: {key: sk-same}\n",
        "router.yaml:7: keys.b: same key as 'a'; keys must differ",
    ),
    (
        "key allows an unknown model",
        GOOD_PROVIDER + GOOD_MODELS + "keys:\n  app: {key: sk-a, models: [chta]}\n",
        "router.yaml:6: keys.app.models[0]: unknown model 'chta' (did you mean 'chat'?)",
    ),
    (
        "auth on but no keys",
        GOOD_PROVIDER + GOOD_MODELS,
        "server.auth: authentication is on but no `keys` are configured",
    ),
    (
        "wrong type",
        "server: {port: eighty}\n" + GOOD_PROVIDER + GOOD_MODELS + GOOD_KEYS,
        "router.yaml:1: server.port: Input should be a valid integer",
    ),
    (
        "unknown operation in a body limit",
        "server:\n  max_body_bytes_by_operation: {transcription: 104857600}\n"
        + GOOD_PROVIDER
        + GOOD_MODELS
        + GOOD_KEYS,
        "router.yaml:2: server.max_body_bytes_by_operation.transcription: unknown operation "
        "'transcription' (did you mean 'transcriptions'?); operations: chat, completions, "
        "embeddings, images, image_edits, image_variations, speech, transcriptions, "
        "translations, moderations, rerank",
    ),
    (
        "a body limit too small",
        "server:\n  max_body_bytes_by_operation: {images: 10}\n"
        + GOOD_PROVIDER
        + GOOD_MODELS
        + GOOD_KEYS,
        "router.yaml:2: server.max_body_bytes_by_operation.images: Input should be greater than "
        "or equal to 1024",
    ),
    (
        "invalid YAML",
        "providers:\n  p: [unclosed\n",
        "router.yaml:3: invalid YAML",
    ),
    (
        "empty file",
        "",
        "router.yaml:1: the file is empty",
    ),
    (
        "top level is a list",
        "- a\n- b\n",
        "router.yaml:1: the top level must be a mapping of keys",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_rejects_bad_config(tmp_path, monkeypatch, capsys, text, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLM_ROUTER_TEST_UNSET_VAR", raising=False)
    (tmp_path / "router.yaml").write_text(textwrap.dedent(text))
    assert main(["check", "router.yaml"]) == 1
    err = capsys.readouterr().err
    assert expected in err, err


def test_every_problem_is_reported_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (
        GOOD_PROVIDER
        + "models:\n  chat: {targets: [{provider: telkm, model: m}], fallbacks: [nope]}\n"
        + "keys:\n  app: {key: sk-a, models: [chta]}\n"
    )
    (tmp_path / "router.yaml").write_text(text)
    assert main(["check", "router.yaml"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3, lines


def test_check_accepts_good_config_and_summarises(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "router.yaml").write_text(GOOD_PROVIDER + GOOD_MODELS + GOOD_KEYS)
    assert main(["check", "router.yaml"]) == 0
    out = capsys.readouterr().out
    assert "router.yaml: OK" in out
    assert "chat: priority over telkom/m" in out
    assert "sk-test-key" not in out


ONE_PASS = """\
server:
  port: eighty
providers:
  up: {plugin: openai, base_url: "http://127.0.0.1:9/v1", rate_limits: [per-minut]}
  extra: {plugin: opnai, base_url: "http://127.0.0.1:9/v1"}
  broken: {plugin: openai, base_url: "ftp://x"}
models:
  chat:
    targets: [{provider: up, model: m}, {provider: broken, model: m}]
    fallbacks: [chta]
    retrys: {attempts: 1}
  other: {targets: []}
keys:
  app: {key: "${LLM_ROUTER_TEST_UNSET_VAR}", models: [chat, other], rate_limits: [broken-policy]}
  both: {key: sk-b, sha256: nothex}
rate_limits:
  per-minute: {requests_per_minute: 5}
  broken-policy: {requests_per_minute: 0}
header_rewrites:
  - {scope: global, sett: {x-a: b}}
  - {scope: model, name: chta, set: {x-a: b}}
"""


def test_check_reports_schema_and_reference_problems_in_one_pass(tmp_path, capsys, monkeypatch):
    """A schema error does not hide an unknown plugin, fallback or policy: every problem is
    listed in one run, sorted by line, and an invalid entry that others name (`broken`,
    `other`) is reported once, for what is wrong with it, not again where it is named."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLM_ROUTER_TEST_UNSET_VAR", raising=False)
    (tmp_path / "router.yaml").write_text(ONE_PASS)
    assert main(["check", "router.yaml"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "router.yaml:2: server.port: Input should be a valid integer, unable to parse string "
        "as an integer",
        "router.yaml:4: providers.up.rate_limits[0]: unknown rate-limit policy 'per-minut' "
        "(did you mean 'per-minute'?)",
        "router.yaml:5: providers.extra.plugin: plugin 'opnai' is not installed (did you mean "
        "'openai'?); it is not a plugin of this project: check the name (`llm-switchyard plugins` "
        "lists the installed ones), or install the package that provides it "
        "(docs/writing-a-plugin.md)",
        "router.yaml:6: providers.broken.base_url: must start with http:// or https://",
        "router.yaml:10: models.chat.fallbacks[0]: unknown model 'chta' (did you mean 'chat'?)",
        "router.yaml:11: models.chat.retrys: unknown key 'retrys' (did you mean 'retries'?)",
        "router.yaml:12: models.other.targets: must not be empty",
        "router.yaml:14: keys.app.key: environment variable 'LLM_ROUTER_TEST_UNSET_VAR' is not set",
        "router.yaml:15: keys.both.sha256: String should match pattern '^[0-9a-fA-F]{64}$'",
        "router.yaml:18: rate_limits.broken-policy.requests_per_minute: Input should be greater "
        "than or equal to 1",
        "router.yaml:20: header_rewrites[0].sett: unknown key 'sett' (did you mean 'set'?)",
        "router.yaml:21: header_rewrites[1].name: unknown model 'chta' (did you mean 'chat'?)",
    ]


def test_a_value_whose_variable_is_missing_is_reported_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLM_ROUTER_TEST_UNSET_VAR", raising=False)
    text = (
        "server: {port: '${LLM_ROUTER_TEST_UNSET_VAR}'}\n"
        + GOOD_PROVIDER
        + "models:\n  chat: {targets: [{provider: '${LLM_ROUTER_TEST_UNSET_VAR}', model: m}]}\n"
        + GOOD_KEYS
    )
    (tmp_path / "router.yaml").write_text(text)
    assert main(["check", "router.yaml"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "router.yaml:1: server.port: environment variable 'LLM_ROUTER_TEST_UNSET_VAR' is not set",
        "router.yaml:5: models.chat.targets[0].provider: environment variable "
        "'LLM_ROUTER_TEST_UNSET_VAR' is not set",
    ]
