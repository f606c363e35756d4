"""Pure translation: request building, stream events, models, settings. No network."""

from __future__ import annotations

import textwrap
from typing import Any

import orjson
import pytest
from llm_router_telnyx import TelnyxProvider, TelnyxSettings, translate
from llm_router_telnyx.testing import models_payload
from multidict import CIMultiDict
from pydantic import ValidationError

from router.config.loader import ConfigError
from router.graph.load import load_graph
from router.spec import (
    MalformedResponse,
    Operation,
    ProviderConfig,
    ProviderConfigError,
    UpstreamBadRequest,
    UpstreamResponse,
    UpstreamServerError,
)

BASE = "http://127.0.0.1:9/v2/ai"


def provider(api_key: str | None = "KEYsecret", **settings: Any) -> TelnyxProvider:
    return TelnyxProvider(
        ProviderConfig(
            name="tx", base_url=BASE, api_key=api_key, settings=TelnyxSettings(**settings)
        )
    )


def build(body: dict[str, Any], p: TelnyxProvider | None = None, **kw: Any) -> dict[str, Any]:
    request = (p or provider()).build_request(Operation.CHAT, dict(body), "up/model", **kw)
    return orjson.loads(request.content)


MESSAGES = [{"role": "user", "content": "hi"}]


# -- requests ---------------------------------------------------------------------------------


def test_request_path_auth_and_model():
    request = provider().build_request(Operation.CHAT, {"messages": MESSAGES}, "up/model")
    assert str(request.url) == BASE + "/openai/chat/completions"
    assert request.method == "POST"
    assert request.headers["authorization"] == "Bearer KEYsecret"
    assert orjson.loads(request.content) == {"messages": MESSAGES, "model": "up/model"}


def test_deprecated_chat_path_setting():
    p = provider(chat_path="/chat/completions")
    request = p.build_request(Operation.CHAT, {"messages": MESSAGES}, "m")
    assert str(request.url) == BASE + "/chat/completions"
    embed = p.build_request(Operation.EMBEDDINGS, {"input": "x"}, "e")
    assert str(embed.url) == BASE + "/openai/embeddings"


def test_operations_and_models_request():
    p = provider()
    assert p.operations == frozenset({Operation.CHAT, Operation.EMBEDDINGS})
    assert Operation.COMPLETIONS not in p.urls
    assert str(p.models_request().url) == BASE + "/openai/models"
    assert TelnyxProvider.default_base_url == "https://api.telnyx.com/v2/ai"
    assert TelnyxProvider.stream_usage is False


def test_telnyx_extensions_pass_through_untouched():
    extensions = {
        "guided_json": {"type": "object", "properties": {"a": {"type": "string"}}},
        "guided_regex": "[a-z]+",
        "guided_choice": ["yes", "no"],
        "min_p": 0.05,
        "use_beam_search": True,
        "best_of": 3,
        "length_penalty": 0.8,
        "early_stopping": True,
        "enable_thinking": False,
        "tools": [
            {"type": "retrieval", "retrieval": {"bucket_ids": ["b1", "b2"], "max_num_results": 4}},
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
        ],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
    }
    sent = build({"messages": MESSAGES, **extensions})
    assert sent == {"messages": MESSAGES, "model": "up/model", **extensions}


def test_stream_options_never_sent():
    sent = build(
        {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
        stream=True,
    )
    assert "stream_options" not in sent
    assert sent["stream"] is True


@pytest.mark.parametrize("field", ["openai_api_key", "api_key_ref"])
def test_client_api_keys_dropped_by_default(field, caplog):
    sent = build({"messages": MESSAGES, field: "sk-client-owned-secret"})
    assert field not in sent
    assert "sk-client-owned-secret" not in caplog.text


@pytest.mark.parametrize("field", ["openai_api_key", "api_key_ref"])
def test_client_api_keys_allowed_by_setting(field):
    sent = build({"messages": MESSAGES, field: "sk-x"}, provider(allow_client_api_keys=True))
    assert sent[field] == "sk-x"


def test_client_key_dropped_from_embeddings_too():
    request = provider().build_request(
        Operation.EMBEDDINGS, {"input": "x", "openai_api_key": "sk-x"}, "e"
    )
    assert orjson.loads(request.content) == {"input": "x", "model": "e"}


def test_image_url_object_becomes_string_without_mutating_client_body():
    part = {"type": "image_url", "image_url": {"url": "https://img.example/cat.png"}}
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what?"}, part]},
    ]
    body = {"messages": messages}
    sent = build(body)
    assert sent["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": "https://img.example/cat.png",
    }
    assert sent["messages"][0] == messages[0]
    assert part["image_url"] == {"url": "https://img.example/cat.png"}  # client's untouched


def test_text_only_messages_are_passed_as_is():
    messages = [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    assert translate.image_parts(messages) is messages


def test_max_completion_tokens_becomes_max_tokens():
    assert build({"messages": MESSAGES, "max_completion_tokens": 50})["max_tokens"] == 50
    sent = build({"messages": MESSAGES, "max_completion_tokens": 50, "max_tokens": 20})
    assert sent["max_tokens"] == 20 and "max_completion_tokens" not in sent


def test_json_schema_response_format_becomes_guided_json():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    sent = build({"messages": MESSAGES, "response_format": fmt})
    assert sent["guided_json"] == schema and "response_format" not in sent
    own = {"type": "object"}
    sent = build({"messages": MESSAGES, "response_format": fmt, "guided_json": own})
    assert sent["guided_json"] == own and "response_format" not in sent
    sent = build({"messages": MESSAGES, "response_format": {"type": "json_schema"}})
    assert sent["response_format"] == {"type": "json_object"}


# -- responses and streams ----------------------------------------------------------------------


def event(p: TelnyxProvider, payload: Any) -> dict[str, Any] | None:
    return p.transform_stream_event(Operation.CHAT, orjson.dumps(payload))


def test_reasoning_content_passes_through_and_finish_reason_filled():
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"reasoning_content": "thinking"}}],
    }
    out = event(provider(), chunk)
    assert out["choices"][0]["delta"] == {"reasoning_content": "thinking"}
    assert out["choices"][0]["finish_reason"] is None


def test_missing_tool_call_index_is_filled():
    calls = [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": ""}},
        {"index": 5, "id": "b", "type": "function", "function": {"name": "g", "arguments": ""}},
    ]
    chunk = {"choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]}
    out = event(provider(), chunk)
    assert [c["index"] for c in out["choices"][0]["delta"]["tool_calls"]] == [0, 5]


def test_garbage_stream_events_are_malformed():
    p = provider()
    with pytest.raises(MalformedResponse):
        p.transform_stream_event(Operation.CHAT, b"not json")
    with pytest.raises(MalformedResponse):
        p.transform_stream_event(Operation.CHAT, b"[1, 2]")


def test_event_named_error_is_an_error():
    with pytest.raises(UpstreamServerError):
        provider().transform_stream_event(Operation.CHAT, b'{"message": "boom"}', "error")


def test_error_frame_with_status_code_maps_by_code():
    frame = {"error": {"message": "bad input", "type": "BadRequestError", "code": 400}}
    with pytest.raises(UpstreamBadRequest, match="bad input"):
        event(provider(), frame)


def test_models_2026_iso_created_and_metadata_kept():
    response = UpstreamResponse(200, CIMultiDict(), orjson.dumps(models_payload("2026")))
    (model,) = provider().transform_models(response)
    assert model["id"] == "moonshotai/Kimi-K2.6"
    assert model["object"] == "model"
    assert model["created"] == 1777593600  # 2026-05-01T00:00:00Z
    assert model["owned_by"] == "Telnyx"
    assert model["context_length"] == 262144 and model["pricing"]["unit"] == "1M_tokens"


def test_models_2025_integer_created():
    response = UpstreamResponse(200, CIMultiDict(), orjson.dumps(models_payload("2025")))
    (model,) = provider().transform_models(response)
    assert model == {
        "id": "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "object": "model",
        "created": 1721001600,
        "owned_by": "meta",
    }


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2026-05-01T00:00:00Z", 1777593600),
        ("2026-05-01T02:00:00+02:00", 1777593600),
        ("2026-05-01T00:00:00", 1777593600),
        ("1777593600", 1777593600),
        (1721001600, 1721001600),
        (1721001600.7, 1721001600),
        ("yesterday", 0),
        (None, 0),
    ],
)
def test_created_seconds(value, seconds):
    assert translate.created_seconds(value) == seconds


# -- settings and config errors -------------------------------------------------------------------


def test_settings_defaults_and_validation():
    settings = TelnyxSettings()
    assert settings.chat_path == "/openai/chat/completions"
    assert settings.allow_client_api_keys is False
    with pytest.raises(ValidationError):
        TelnyxSettings(bogus=1)
    with pytest.raises(ValidationError):
        TelnyxSettings(chat_path="/v1/chat/completions")
    for name, field in TelnyxSettings.model_fields.items():
        assert field.description, name


def test_missing_api_key_rejected():
    with pytest.raises(ProviderConfigError) as info:
        provider(api_key=None)
    assert info.value.key == "api_key"


def _load(tmp_path, providers_yaml: str):
    path = tmp_path / "router.yaml"
    path.write_text(
        textwrap.dedent(providers_yaml)
        + "models:\n  m:\n    targets: [{provider: tx, model: x}]\nserver: {auth: none}\n"
    )
    return path


@pytest.mark.parametrize(
    ("yaml_text", "key", "text"),
    [
        (
            "providers:\n  tx:\n    plugin: telnyx\n    api_key: KEYx\n"
            "    settings:\n      bogus: 1\n",
            "providers.tx.settings.bogus",
            "",
        ),
        (
            "providers:\n  tx:\n    plugin: telnyx\n    api_key: KEYx\n"
            "    settings:\n      chat_path: /v1/chat\n",
            "providers.tx.settings.chat_path",
            "",
        ),
        (
            "providers:\n  tx:\n    plugin: telnyx\n    api_key: KEYx\n"
            "    base_url: https://api.telnyx.com/v2/ai/openai\n",
            "providers.tx.base_url",
            "https://api.telnyx.com/v2/ai",
        ),
        ("providers:\n  tx:\n    plugin: telnyx\n", "providers.tx.api_key", "TELNYX_API_KEY"),
    ],
)
def test_config_errors_name_file_line_key(tmp_path, yaml_text, key, text):
    path = _load(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as info:
        load_graph(str(path))
    message = str(info.value)
    assert f"{path}:" in message and key in message and text in message
    assert "KEYx" not in message


def test_valid_config_uses_default_base_url(tmp_path):
    path = _load(tmp_path, "providers:\n  tx:\n    plugin: telnyx\n    api_key: KEYx\n")
    graph = load_graph(str(path))
    p = graph.providers["tx"].provider
    assert p.urls[Operation.CHAT] == "https://api.telnyx.com/v2/ai/openai/chat/completions"


def test_example_config_loads():
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "examples" / "configs" / "telnyx.yaml"
    assert path.read_text().startswith(
        "# yaml-language-server: $schema=../../schema/router.schema.json\n"
    )
    graph = load_graph(str(path), {"TELNYX_API_KEY": "KEYexample"})
    p = graph.providers["telnyx"].provider
    assert isinstance(p, TelnyxProvider)
    assert p.headers["authorization"] == "Bearer KEYexample"
    assert set(graph.routes) == {"chat", "chat-small", "reasoning", "embeddings"}
