"""Pure translation: requests, responses, stream events, rate-limit headers, settings."""

from __future__ import annotations

import httpx
import orjson
import pytest
from llm_router_telkom import TelkomProvider, TelkomSettings, kong
from llm_router_telkom import testing as telkom
from pydantic import ValidationError

from router.config import ConfigError
from router.graph.load import load_graph
from router.spec import MalformedResponse, Operation, ProviderConfig, ProviderConfigError

BASE = "http://127.0.0.1:9/Telkom-LLM/0.0.4"


def make(base_url: str = BASE, api_key: str | None = "k" * 32, **settings) -> TelkomProvider:
    config = ProviderConfig(
        name="telkom",
        base_url=base_url,
        api_key=api_key,
        settings=TelkomSettings(**settings),
    )
    return TelkomProvider(config)


# -- requests ---------------------------------------------------------------------------------


def test_request_goes_to_observed_path_with_x_api_key_only():
    provider = make()
    request = provider.build_request(
        Operation.CHAT,
        {"model": "public", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2},
        "telkom-ai-instruct",
    )
    assert isinstance(request, httpx.Request)
    assert str(request.url) == BASE + "/llm/chat/completions"
    assert request.headers["x-api-key"] == "k" * 32
    assert "authorization" not in request.headers
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.content) == {
        "model": "telkom-ai-instruct",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
    }


def test_documented_path_is_selectable():
    provider = make(chat_path="/chat/completions")
    request = provider.build_request(Operation.CHAT, {"messages": []}, "telkom-ai")
    assert str(request.url) == BASE + "/chat/completions"


def test_stream_request_keeps_accept_json():
    request = make().build_request(
        Operation.CHAT, {"messages": [], "stream": True}, "telkom-ai", stream=True
    )
    assert request.headers["accept"] == "application/json"
    assert orjson.loads(request.content)["stream"] is True


def test_max_completion_tokens_becomes_max_tokens():
    provider = make()
    body = provider.transform_request(Operation.CHAT, {"max_completion_tokens": 50}, "telkom-ai")
    assert body == {"model": "telkom-ai", "max_tokens": 50}
    both = provider.transform_request(
        Operation.CHAT, {"max_completion_tokens": 50, "max_tokens": 20}, "telkom-ai"
    )
    assert both == {"model": "telkom-ai", "max_tokens": 20}


def test_only_chat_and_no_model_listing():
    provider = make()
    assert provider.operations == frozenset({Operation.CHAT})
    assert set(provider.urls) == {Operation.CHAT}
    assert provider.models_request() is None
    assert provider.stream_usage is False
    assert (
        TelkomProvider.default_base_url == "https://telkom-ai-dag.api.apilogy.id/Telkom-LLM/0.0.4"
    )


# -- responses and stream events ----------------------------------------------------------------


def test_response_passes_through():
    from router.spec import UpstreamResponse

    reply = telkom.completion("Halo")
    data = make().transform_response(
        Operation.CHAT, UpstreamResponse(200, httpx.Headers(reply.headers), reply.body)
    )
    assert data["choices"][0]["message"]["content"] == "Halo"
    assert data["usage"]["total_tokens"] == 21


def test_stream_chunk_gets_missing_finish_reason_and_delta():
    provider = make()
    chunk = provider.transform_stream_event(
        Operation.CHAT,
        b'{"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"a"}},{"index":1}]}',
    )
    assert chunk is not None
    assert chunk["choices"][0] == {"index": 0, "delta": {"content": "a"}, "finish_reason": None}
    assert chunk["choices"][1] == {"index": 1, "delta": {}, "finish_reason": None}


def test_stream_error_frame_raises():
    frame = telkom.mid_stream_error().frames[-1]
    with pytest.raises(Exception) as info:
        make().transform_stream_event(Operation.CHAT, orjson.dumps(frame))
    assert type(info.value).__name__ == "UpstreamServerError"
    assert "failed while generating" in info.value.message


def test_stream_garbage_is_malformed():
    with pytest.raises(MalformedResponse):
        make().transform_stream_event(Operation.CHAT, b"not json")


# -- rate-limit headers -----------------------------------------------------------------------


def test_rate_limit_headers_on_success():
    info = make().get_rate_limit_info(httpx.Headers(telkom.rate_limit_headers(3, reset=20)))
    assert info is not None
    assert (info.limit_requests, info.remaining_requests) == (7, 3)
    assert not info.exhausted


def test_exhausted_quota_says_when_it_refills():
    info = make().get_rate_limit_info(httpx.Headers(telkom.rate_limit_headers(0, reset=42)))
    assert info is not None and info.exhausted
    assert info.wait_hint() == 42


def test_retry_after_wins_on_429():
    info = make().get_rate_limit_info(httpx.Headers(telkom.rate_limited(retry_after=12).headers))
    assert info is not None and info.retry_after == 12 and info.wait_hint() == 12


def test_period_headers_alone_reset_at_the_window_end():
    headers = httpx.Headers({"X-RateLimit-Limit-Minute": "7", "X-RateLimit-Remaining-Minute": "0"})
    info = kong.parse_kong_rate_limit(headers, now=60.0 * 1000 + 15)  # 15 s into a minute
    assert info is not None and info.exhausted
    assert info.wait_hint() == pytest.approx(45.0)


def test_exhausted_longer_window_wins_over_open_shorter_one():
    headers = httpx.Headers(
        {
            "X-RateLimit-Limit-Minute": "7",
            "X-RateLimit-Remaining-Minute": "5",
            "X-RateLimit-Limit-Hour": "100",
            "X-RateLimit-Remaining-Hour": "0",
        }
    )
    info = kong.parse_kong_rate_limit(headers, now=3600.0 * 10 + 600)
    assert info is not None
    assert (info.limit_requests, info.remaining_requests) == (100, 0)
    assert info.wait_hint() == pytest.approx(3000.0)


def test_no_rate_limit_headers():
    assert make().get_rate_limit_info(httpx.Headers({"content-type": "application/json"})) is None


# -- settings and load-time checks ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/llm/chat/completions", "/chat/completions", "/v2/chat"])
def test_chat_path_accepts_plain_paths(path):
    assert TelkomSettings(chat_path=path).chat_path == path


@pytest.mark.parametrize(
    "path", ["chat/completions", "", "/", "/llm//chat", "/chat/", "/chat?x=1", "https://h/chat"]
)
def test_chat_path_rejects_others(path):
    with pytest.raises(ValidationError):
        TelkomSettings(chat_path=path)


def test_unknown_setting_rejected():
    with pytest.raises(ValidationError):
        TelkomSettings(chat_pth="/chat/completions")


def test_every_setting_is_documented():
    for name, field in TelkomSettings.model_fields.items():
        assert field.description, name


def test_missing_api_key_rejected():
    with pytest.raises(ProviderConfigError) as info:
        make(api_key=None)
    assert info.value.key == "api_key"


def test_base_url_with_chat_path_rejected():
    with pytest.raises(ProviderConfigError) as info:
        make(base_url=BASE + "/llm/chat/completions")
    assert info.value.key == "base_url"


def test_base_url_with_llm_segment_and_default_path_rejected():
    with pytest.raises(ProviderConfigError) as info:
        make(base_url=BASE + "/llm")
    assert info.value.key == "base_url" and "/llm/llm/chat/completions" in str(info.value)
    # ...but fine with the documented path, which then lands on the observed URL.
    provider = make(base_url=BASE + "/llm", chat_path="/chat/completions")
    assert provider.urls[Operation.CHAT] == BASE + "/llm/chat/completions"


CONFIG = """\
server: {{auth: none}}
providers:
  tk:
    plugin: telkom
    base_url: http://127.0.0.1:9/Telkom-LLM/0.0.4
{extra}
models:
  chat:
    targets: [{{provider: tk, model: telkom-ai}}]
"""


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        (
            "    api_key: ${K}\n    settings: {chat_path: chat/completions}",
            ":7: providers.tk.settings.chat_path:",
        ),
        ("    api_key: ${K}\n    settings: {path: /x}", ":7: providers.tk.settings.path:"),
        ("    settings: {}", ":3: providers.tk.api_key: required"),
        ("    api_key: ${K}\n    headers: {X-Api-Key: abc}", ":7: providers.tk.headers:"),
    ],
)
def test_config_errors_name_file_line_key(tmp_path, extra, where):
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(extra=extra))
    with pytest.raises(ConfigError) as info:
        load_graph(str(path), {"K": "secret-key-value"})
    text = str(info.value)
    assert f"{path}{where}" in text, text
    assert "secret-key-value" not in text


def test_config_loads_with_defaults(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(extra="    api_key: ${K}"))
    graph = load_graph(str(path), {"K": "secret"})
    provider = graph.providers["tk"].provider
    assert provider.urls[Operation.CHAT].endswith("/Telkom-LLM/0.0.4/llm/chat/completions")
