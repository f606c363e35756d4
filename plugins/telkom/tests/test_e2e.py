"""End to end: the official OpenAI SDK -> a real router -> the faithful Telkom fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from llm_router_telkom import testing as telkom

from router.graph.load import load_graph
from router.spec import Operation
from router.testing import FakeUpstream, RouterServer, closed_after_test

KEY = "0123456789abcdef0123456789abcdef"
CLIENT_KEY = "sk-client-telkom"
MESSAGES = [{"role": "user", "content": "Siapa kamu?"}]

CONFIG = """
providers:
  telkom:
    plugin: telkom
    base_url: {url}/Telkom-LLM/0.0.4
    api_key: ${{TELKOM_API_KEY}}
    settings: {settings}
  backup:
    plugin: telkom
    base_url: {url}/Telkom-LLM/backup
    api_key: ${{TELKOM_API_KEY}}
models:
  chat:
    targets: [{{provider: telkom, model: telkom-ai-instruct}}]
    retries: {retries}
  pair:
    targets:
      - {{provider: telkom, model: telkom-ai}}
      - {{provider: backup, model: telkom-ai}}
    retries: {{attempts: 0}}
keys:
  app: {{key: {client_key}}}
"""
BACKUP_PATH = "/Telkom-LLM/backup/llm/chat/completions"


@pytest.fixture
def start(fake_upstream, router_server):
    """`start(settings=..., retries=...)`: a router in front of the fake, and its client."""

    def run(settings: str = "{}", retries: str = "{attempts: 0}") -> openai.OpenAI:
        config = CONFIG.format(
            url=fake_upstream.url, settings=settings, retries=retries, client_key=CLIENT_KEY
        )
        server = router_server(config, environ={"TELKOM_API_KEY": KEY})
        return closed_after_test(
            openai.OpenAI(base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0)
        )

    return run


def test_answer(start, fake_upstream):
    fake_upstream.set_default(telkom.CHAT_PATH, telkom.gateway(KEY, telkom.completion("Saya AI")))
    client = start()
    reply = client.chat.completions.create(
        model="chat", messages=MESSAGES, max_completion_tokens=64, temperature=0.3
    )
    assert reply.choices[0].message.content == "Saya AI"
    assert reply.usage is not None and reply.usage.total_tokens == 21
    (seen,) = fake_upstream.received()
    assert seen.method == "POST" and seen.path == telkom.CHAT_PATH
    assert seen.headers["x-api-key"] == KEY
    assert "authorization" not in seen.headers
    assert seen.headers["accept"] == "application/json"
    assert seen.json() == {
        "model": "telkom-ai-instruct",
        "messages": MESSAGES,
        "max_tokens": 64,
        "temperature": 0.3,
    }


def test_streamed_answer(start, fake_upstream):
    fake_upstream.set_default(
        telkom.CHAT_PATH, telkom.gateway(KEY, telkom.stream(["Sa", "ya", " AI"]))
    )
    client = start()
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Saya AI"
    assert chunks[-1].choices[0].finish_reason == "stop"
    (seen,) = fake_upstream.received()
    body = seen.json()
    assert body["stream"] is True and body["model"] == "telkom-ai-instruct"
    assert "stream_options" not in body  # usage in streams is not something Telkom reports
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["accept"] == "application/json"  # as the vendor's own example sends


def test_stream_usage_is_estimated_when_asked(start, fake_upstream):
    fake_upstream.add(telkom.CHAT_PATH, telkom.stream(["Saya", " AI"]))
    client = start()
    chunks = list(
        client.chat.completions.create(
            model="chat",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0 and usage.prompt_tokens > 0
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Saya AI"


def test_documented_chat_path(start, fake_upstream):
    fake_upstream.add(telkom.DOCUMENTED_CHAT_PATH, telkom.completion("ok"))
    client = start(settings="{chat_path: /chat/completions}")
    reply = client.chat.completions.create(model="chat", messages=MESSAGES)
    assert reply.choices[0].message.content == "ok"
    assert [r.path for r in fake_upstream.received()] == [telkom.DOCUMENTED_CHAT_PATH]


def test_wrong_chat_path_points_at_the_setting(start, fake_upstream):
    fake_upstream.set_default(telkom.DOCUMENTED_CHAT_PATH, telkom.no_route())
    client = start(settings="{chat_path: /chat/completions}")
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert info.value.status_code == 404
    assert info.value.code == "upstream_route_not_found"
    assert "providers.telkom.settings.chat_path" in info.value.message
    assert len(fake_upstream.received()) == 1


ERRORS = [
    # (reply, SDK exception, client status, type, code)
    (telkom.no_api_key(), openai.AuthenticationError, 401, "authentication_error",
     "upstream_authentication_failed"),
    (telkom.invalid_credentials(), openai.AuthenticationError, 401, "authentication_error",
     "upstream_authentication_failed"),
    (telkom.invalid_credentials(kong=0), openai.AuthenticationError, 401, "authentication_error",
     "upstream_authentication_failed"),
    (telkom.duplicate_api_key(kong=2), openai.AuthenticationError, 401, "authentication_error",
     "upstream_authentication_failed"),
    (telkom.rate_limited(retry_after=20), openai.RateLimitError, 429, "rate_limit_error",
     "rate_limit_exceeded"),
    (telkom.no_route(kong=2), openai.NotFoundError, 404, "invalid_request_error",
     "upstream_route_not_found"),
    (telkom.unexpected_error(), openai.InternalServerError, 502, "server_error",
     "upstream_server_error"),
    (telkom.backend_error(400, "maximum context length is 8192 tokens", param="messages"),
     openai.BadRequestError, 400, "invalid_request_error", "context_length_exceeded"),
    (telkom.backend_error(400, "top_p must be in (0, 1]", param="top_p"),
     openai.BadRequestError, 400, "invalid_request_error", None),
    (telkom.backend_detail(422, [{"loc": ["body", "messages"], "msg": "field required"}]),
     openai.BadRequestError, 400, "invalid_request_error", None),
    (telkom.backend_error(404, "The model `telkom-ai-instruct` does not exist.",
                          type="NotFoundError", code=404),
     openai.NotFoundError, 404, "invalid_request_error", "model_not_found"),
    (telkom.backend_error(500, "CUDA out of memory", type="InternalServerError"),
     openai.InternalServerError, 502, "server_error", "upstream_server_error"),
    (telkom.backend_detail(504, "Gateway Timeout"),
     openai.InternalServerError, 504, "timeout_error", "upstream_timeout"),
]  # fmt: skip


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[tuple[FakeUpstream, openai.OpenAI]]:
    """One fake and one router for the error matrix: starting one per case costs seconds."""
    config = CONFIG.format(
        url="{url}", settings="{}", retries="{attempts: 0}", client_key=CLIENT_KEY
    )
    with FakeUpstream() as upstream:
        path = tmp_path_factory.mktemp("telkom") / "router.yaml"
        path.write_text(config.replace("{url}", upstream.url))
        with (
            RouterServer(path, {"TELKOM_API_KEY": KEY}) as server,
            openai.OpenAI(base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0) as client,
        ):
            yield upstream, client


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    ("reply", "exc", "status", "type_", "code"),
    ERRORS,
    ids=[f"{r.status}-{c or t}-{i}" for i, (r, _, _, t, c) in enumerate(ERRORS)],
)
def test_errors(shared, stream, reply, exc, status, type_, code):
    fake_upstream, client = shared
    fake_upstream.reset()
    fake_upstream.set_default(telkom.CHAT_PATH, reply)
    with pytest.raises(exc) as info:
        result = client.chat.completions.create(model="chat", messages=MESSAGES, stream=stream)
        list(result) if stream else None
    error = info.value
    assert error.status_code == status
    assert error.type == type_ and error.code == code
    assert KEY not in error.response.text
    if status == 429:
        assert error.response.headers["retry-after"] == "20"
    assert len(fake_upstream.received(telkom.CHAT_PATH)) == 1  # retries: {attempts: 0}


def test_rate_limit_retried_after_retry_after(start, fake_upstream):
    fake_upstream.add(telkom.CHAT_PATH, telkom.rate_limited(retry_after=1), telkom.completion("ok"))
    client = start(retries="{attempts: 1}")
    reply = client.chat.completions.create(model="chat", messages=MESSAGES)
    assert reply.choices[0].message.content == "ok"
    first, second = fake_upstream.received()
    assert second.at - first.at >= 0.8  # waited out Retry-After: 1


def test_kong_500_retried_by_default(start, fake_upstream):
    fake_upstream.add(telkom.CHAT_PATH, telkom.unexpected_error(), telkom.completion("ok"))
    client = start(retries="{attempts: 2, backoff_initial: 0.01}")
    reply = client.chat.completions.create(model="chat", messages=MESSAGES)
    assert reply.choices[0].message.content == "ok"
    assert len(fake_upstream.received()) == 2


def test_mid_stream_error_frame(start, fake_upstream):
    fake_upstream.add(telkom.CHAT_PATH, telkom.mid_stream_error(["Sa", "ya"], delay=0.05))
    client = start()
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    text = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            text.append(chunk.choices[0].delta.content or "")
    assert "".join(text) == "Saya"
    assert "failed while generating" in info.value.message
    assert info.value.body["type"] == "server_error"
    assert info.value.body["code"] == "upstream_server_error"
    assert len(fake_upstream.received()) == 1


def test_connection_cut_mid_stream(start, fake_upstream):
    reply = telkom.stream(["Sa", "ya", " AI"], delay=0.05)
    reply.drop_after_frames = 2
    fake_upstream.add(telkom.CHAT_PATH, reply)
    client = start()
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert info.value.body["code"] == "upstream_connection_error"


def test_exhausted_quota_moves_traffic_before_a_429(start, fake_upstream):
    fake_upstream.add(telkom.CHAT_PATH, telkom.completion("first", remaining=0))
    fake_upstream.set_default(telkom.CHAT_PATH, telkom.rate_limited())
    fake_upstream.set_default(BACKUP_PATH, telkom.completion("backup"))
    client = start()
    first = client.chat.completions.create(model="pair", messages=MESSAGES)
    assert first.choices[0].message.content == "first"
    # RateLimit-Remaining: 0 with RateLimit-Reset: 60 said the quota is spent: go elsewhere.
    reply = client.chat.completions.create(model="pair", messages=MESSAGES)
    assert reply.choices[0].message.content == "backup"
    assert [r.path for r in fake_upstream.received()] == [telkom.CHAT_PATH, BACKUP_PATH]


def telkom_url(path: str) -> str:
    return "https://telkom-ai-dag.api.apilogy.id" + path


def test_example_config_loads():
    path = Path(__file__).resolve().parents[3] / "examples" / "configs" / "telkom.yaml"
    assert path.read_text().startswith(
        "# yaml-language-server: $schema=../../schema/router.schema.json\n"
    )
    graph = load_graph(str(path), {"TELKOM_API_KEY": KEY})
    provider = graph.providers["telkom"].provider
    assert provider.headers["x-api-key"] == KEY
    assert provider.urls == {Operation.CHAT: telkom_url("/Telkom-LLM/0.0.4/llm/chat/completions")}
    models = {t.model for route in graph.routes.values() for t in route.targets}
    assert models == set(telkom.MODELS)
