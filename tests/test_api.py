"""The OpenAI-compatible API end to end: a real router, the openai SDK, a fake upstream.

Every answer, stream chunk and error is also checked against the official OpenAI OpenAPI
description where it is available (see `router.testing.openapi`).
"""

import time

import httpx
import openai
import orjson
import pytest

from router.http.disconnect import WATCH_AFTER
from router.testing import (
    Reply,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)

CONFIG = """
server:
  max_body_bytes: 2048
providers:
  up:
    plugin: openai
    base_url: {url}/v1
    api_key: sk-upstream-secret
    timeouts: {{connect: 1, first_token: 1, idle: 1, total: 3}}
  offline:
    plugin: mock
models:
  chat:
    targets: [{{provider: up, model: up-model}}]
    retries: {{attempts: 0}}
  demo:
    targets: [{{provider: offline, model: mock-1}}]
  secret-model:
    targets: [{{provider: offline, model: mock-2}}]
keys:
  app: {{key: sk-client-1, models: [chat, demo]}}
  admin: {{key: sk-client-2}}
"""
MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def router(fake_upstream, router_server):
    return router_server(CONFIG.format(url=fake_upstream.url))


@pytest.fixture
def client(router):
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="sk-client-1", max_retries=0)
    )


def post(router, path, body, key="sk-client-1", headers=None):
    headers = {**({"authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(router.url + path, content=content, headers=headers, timeout=10)


def assert_error(response, status, code=None, param=None, openapi=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    if code is not None:
        assert body["error"]["code"] == code
    if param is not None:
        assert body["error"]["param"] == param
    assert response.headers["x-request-id"]
    if openapi is not None:
        openapi.validate("ErrorResponse", body)
    return body["error"]


# -- answers --------------------------------------------------------------------------------


def test_chat_completion(client, fake_upstream, openapi):
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("Hello!")))
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES)
    reply = raw.parse()
    assert reply.choices[0].message.content == "Hello!"
    assert reply.usage.total_tokens == 7
    assert raw.headers["x-router-model"] == "chat"
    assert raw.headers["x-router-provider"] == "up"
    assert raw.headers["x-router-attempts"] == "1"
    openapi.validate("CreateChatCompletionResponse", raw.http_response.json())
    (seen,) = fake_upstream.received("/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer sk-upstream-secret"
    assert seen.json() == {"model": "up-model", "messages": MESSAGES}


def test_an_openai_compatible_answer_passes_through_byte_for_byte(client, fake_upstream):
    """Checked and read for its usage, not re-encoded: the upstream's own formatting and
    fields (here a vendor's extra field and spaces) reach the client as they were sent."""
    body = orjson.dumps(chat_completion("Hi")).replace(b'"id":', b'"id": ', 1)
    body = body[:-1] + b', "x_vendor_trace": {"node": 7}}'
    fake_upstream.add("/v1/chat/completions", json_reply(body))
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES)
    assert raw.http_response.content == body
    assert raw.parse().choices[0].message.content == "Hi"
    assert int(raw.headers["content-length"]) == len(body)


def test_unknown_fields_pass_through(client, fake_upstream):
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion()))
    client.chat.completions.create(
        model="chat", messages=MESSAGES, temperature=0.2, extra_body={"guided_choice": ["a"]}
    )
    sent = fake_upstream.received("/v1/chat/completions")[0].json()
    assert sent["guided_choice"] == ["a"]
    assert sent["temperature"] == 0.2


def test_stream_relays_chunks_and_usage_on_request(client, fake_upstream, openapi):
    fake_upstream.add("/v1/chat/completions", sse_reply(chat_chunks(["Hel", "lo"]), delay=0.01))
    with client.chat.completions.with_streaming_response.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-router-provider"] == "up"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 8
    for chunk in chunks:
        openapi.validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    sent = fake_upstream.received("/v1/chat/completions")[0].json()
    assert sent["stream"] is True


def test_stream_without_usage_request_hides_the_usage_the_router_asked_for(client, fake_upstream):
    fake_upstream.add("/v1/chat/completions", sse_reply(chat_chunks(["a", "b"])))
    chunks = list(client.chat.completions.create(model="chat", messages=MESSAGES, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    # The router asked the upstream for usage on its own behalf, to count tokens.
    sent = fake_upstream.received("/v1/chat/completions")[0].json()
    assert sent["stream_options"] == {"include_usage": True}


def test_stream_frames_are_sse_ending_with_done(router, fake_upstream):
    fake_upstream.add("/v1/chat/completions", sse_reply(chat_chunks(["x"])))
    body = {"model": "chat", "messages": MESSAGES, "stream": True}
    response = post(router, "/v1/chat/completions", body)
    frames = response.content.split(b"\n\n")
    assert frames[-1] == b"" and frames[-2] == b"data: [DONE]"
    assert all(f.startswith(b"data: ") for f in frames[:-1])


def test_mock_completions_embeddings_and_streams(client, openapi):
    completion = client.completions.with_raw_response.create(model="demo", prompt="Once upon")
    openapi.validate("CreateCompletionResponse", completion.http_response.json())
    assert completion.parse().choices[0].text
    # The OpenAPI description types an embedding as numbers, which is what "float" asks for;
    # the SDK asks for base64 when the caller does not say, and decodes it to the same numbers.
    embedding = client.embeddings.with_raw_response.create(
        model="demo", input=["a", "b"], encoding_format="float"
    )
    openapi.validate("CreateEmbeddingResponse", embedding.http_response.json())
    floats = [item.embedding for item in embedding.parse().data]
    assert len(floats) == 2
    packed = client.embeddings.with_raw_response.create(model="demo", input=["a", "b"])
    assert all(isinstance(i["embedding"], str) for i in packed.http_response.json()["data"])
    decoded = [item.embedding for item in packed.parse().data]
    assert len(decoded) == 2
    assert all(d == pytest.approx(f) for d, f in zip(decoded, floats, strict=True))
    stream = client.completions.create(model="demo", prompt="Once upon", stream=True)
    assert "".join(c.choices[0].text for c in stream if c.choices)
    chat = client.chat.completions.create(model="demo", messages=MESSAGES)
    again = client.chat.completions.create(model="demo", messages=MESSAGES)
    assert chat.choices[0].message.content == again.choices[0].message.content  # deterministic


def test_models_list_only_what_the_key_may_use(router, client, openapi):
    raw = client.models.with_raw_response.list()
    openapi.validate("ListModelsResponse", raw.http_response.json())
    assert sorted(m.id for m in raw.parse()) == ["chat", "demo"]
    everything = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="sk-client-2")
    ).models.list()
    assert sorted(m.id for m in everything) == ["chat", "demo", "secret-model"]
    model = client.models.retrieve("demo")
    assert model.id == "demo" and model.object == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("secret-model")


def test_routes_without_v1_prefix(router, fake_upstream):
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("no prefix")))
    response = post(router, "/chat/completions", {"model": "chat", "messages": MESSAGES})
    assert response.json()["choices"][0]["message"]["content"] == "no prefix"
    models = httpx.get(router.url + "/models", headers={"x-api-key": "sk-client-1"})
    assert {m["id"] for m in models.json()["data"]} == {"chat", "demo"}


def test_health_endpoints(router):
    assert httpx.get(router.url + "/health").json()["status"] == "ok"
    assert httpx.get(router.url + "/health/liveliness").status_code == 200
    assert httpx.get(router.url + "/health/readiness").json() == {"status": "ready"}


def test_request_id_is_propagated_or_generated(router, fake_upstream):
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion()))
    response = post(
        router,
        "/v1/chat/completions",
        {"model": "chat", "messages": MESSAGES},
        headers={"x-request-id": "req-123"},
    )
    assert response.headers["x-request-id"] == "req-123"
    models = httpx.get(router.url + "/v1/models", headers={"x-api-key": "sk-client-1"})
    assert len(models.headers["x-request-id"]) > 8


# -- authentication -------------------------------------------------------------------------


def test_x_api_key_header_is_accepted(router):
    response = httpx.get(router.url + "/v1/models", headers={"x-api-key": "sk-client-1"})
    assert response.status_code == 200


def test_missing_and_unknown_keys_get_401(router, openapi):
    with pytest.raises(openai.AuthenticationError):
        closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="sk-wrong", max_retries=0)
        ).models.list()
    response = post(
        router, "/v1/chat/completions", {"model": "chat", "messages": MESSAGES}, key=None
    )
    error = assert_error(response, 401, "missing_api_key", openapi=openapi)
    assert "Authorization" in error["message"]
    response = post(router, "/v1/chat/completions", {"model": "chat"}, key="sk-client-1x")
    assert "sk-client-1x" not in assert_error(response, 401, "invalid_api_key")["message"]


def test_auth_none(fake_upstream, router_server):
    config = """
    server: {auth: none}
    providers: {offline: {plugin: mock}}
    models: {demo: {targets: [{provider: offline, model: m}]}}
    """
    server = router_server(config)
    client = closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="anything", max_retries=0)
    )
    assert client.chat.completions.create(model="demo", messages=MESSAGES).choices


# -- request errors -------------------------------------------------------------------------


def test_model_not_allowed_for_key_is_403(client):
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="secret-model", messages=MESSAGES)
    assert info.value.body["code"] == "model_not_allowed"


def test_unknown_model_is_404_listing_valid_names(client, openapi):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gtp-4", messages=MESSAGES)
    assert "available models: chat, demo" in info.value.body["message"]
    assert "secret-model" not in info.value.body["message"]
    openapi.validate("Error", info.value.body)


def test_invalid_json_is_400(router, openapi):
    assert_error(
        post(router, "/v1/chat/completions", b"{not json"), 400, param="body", openapi=openapi
    )
    assert_error(post(router, "/v1/chat/completions", b"[1, 2]"), 400, param="body")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": "chat"}, "messages"),
        ({"model": "chat", "messages": []}, "messages"),
        ({"model": "chat", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": "chat", "messages": MESSAGES, "stream": "yes"}, "stream"),
        ({"model": "chat", "messages": MESSAGES, "temperature": "hot"}, "temperature"),
        ({"model": "chat", "messages": MESSAGES, "max_tokens": 1.5}, "max_tokens"),
    ],
)
def test_bad_fields_are_400_naming_the_field(router, body, param):
    error = assert_error(post(router, "/v1/chat/completions", body), 400, param=param)
    assert param.split("[")[0] in error["message"]


def test_body_over_the_limit_is_413(router):
    big = {"model": "chat", "messages": [{"role": "user", "content": "x" * 5000}]}
    assert_error(post(router, "/v1/chat/completions", big), 413, "request_too_large")

    # Without a Content-Length (chunked upload) the limit holds too.
    def chunks():
        yield orjson.dumps(big)

    response = httpx.post(
        router.url + "/v1/chat/completions",
        content=chunks(),
        headers={"authorization": "Bearer sk-client-1"},
    )
    assert_error(response, 413)


def test_wrong_method_is_405_and_unknown_path_404(router, openapi):
    response = httpx.get(router.url + "/v1/chat/completions")
    assert_error(response, 405, "method_not_allowed", openapi=openapi)
    assert_error(httpx.get(router.url + "/v1/nothing"), 404)


# -- upstream failures ----------------------------------------------------------------------

UPSTREAM_429 = json_reply(
    {
        "error": {
            "message": "Rate limit reached",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    },
    status=429,
    headers={"retry-after": "7"},
)


def test_upstream_429_is_429_with_retry_after(client, fake_upstream):
    fake_upstream.add("/v1/chat/completions", UPSTREAM_429)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert info.value.response.headers["retry-after"] == "7"
    assert "Rate limit reached" in info.value.body["message"]


def test_upstream_500_is_502_and_503_is_503(client, fake_upstream, openapi):
    fake_upstream.add(
        "/v1/chat/completions", json_reply({"error": {"message": "boom"}}, status=500)
    )
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert info.value.status_code == 502
    openapi.validate("Error", info.value.body)
    fake_upstream.add("/v1/chat/completions", json_reply({"detail": "overloaded"}, status=503))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert info.value.status_code == 503


def test_upstream_silence_is_504_within_the_budget(client, fake_upstream):
    fake_upstream.add("/v1/chat/completions", Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    assert info.value.status_code == 504
    assert time.monotonic() - started < 2.5  # first_token is 1 s


def test_unreachable_upstream_is_502(fake_upstream, router_server):
    server = router_server(CONFIG.format(url="http://127.0.0.1:9"))
    client = closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="sk-client-1", max_retries=0)
    )
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_connection_error"


def test_upstream_errors_never_echo_the_upstream_key(client, fake_upstream):
    fake_upstream.add(
        "/v1/chat/completions",
        json_reply(
            {"error": {"message": "Incorrect API key provided: sk-upstream-secret"}}, status=401
        ),
    )
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert "sk-upstream-secret" not in info.value.response.text
    assert "***" in info.value.body["message"]


def test_client_disconnect_cancels_the_upstream_request(router, fake_upstream):
    frames = chat_chunks([f"w{i} " for i in range(50)])
    fake_upstream.add("/v1/chat/completions", sse_reply(frames, delay=0.05))
    body = {"model": "chat", "messages": MESSAGES, "stream": True}
    with httpx.stream(
        "POST",
        router.url + "/v1/chat/completions",
        content=orjson.dumps(body),
        headers={"authorization": "Bearer sk-client-1"},
    ) as response:
        next(response.iter_bytes())
    deadline = time.monotonic() + 3
    while not fake_upstream.disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_upstream.disconnects == ["/v1/chat/completions"]


def test_client_disconnect_cancels_a_non_streaming_upstream_request(router, fake_upstream):
    fake_upstream.add("/v1/chat/completions", Reply(hang=True))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            router.url + "/v1/chat/completions",
            content=orjson.dumps({"model": "chat", "messages": MESSAGES}),
            headers={"authorization": "Bearer sk-client-1"},
            timeout=0.3,
        )
    deadline = time.monotonic() + 1.5  # well before the router's own 3 s budget
    while not fake_upstream.disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_upstream.disconnects == ["/v1/chat/completions"]


def test_a_client_gone_before_its_watch_starts_still_cancels_the_upstream(router, fake_upstream):
    """The disconnect watch starts `WATCH_AFTER` into a request; a client that left before
    that is noticed when it starts, not when the upstream finally answers."""
    fake_upstream.add("/v1/chat/completions", Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            router.url + "/v1/chat/completions",
            content=orjson.dumps({"model": "chat", "messages": MESSAGES}),
            headers={"authorization": "Bearer sk-client-1"},
            timeout=WATCH_AFTER / 5,
        )
    while not fake_upstream.disconnects and time.monotonic() - started < 1.5:
        time.sleep(0.01)
    assert fake_upstream.disconnects == ["/v1/chat/completions"]
    assert time.monotonic() - started < 1.0


def test_a_model_may_think_longer_than_the_idle_gap_before_its_first_token(
    fake_upstream, router_server
):
    """Before the first token the first-token timeout governs; after it, the idle gap."""
    config = CONFIG.format(url=fake_upstream.url).replace("idle: 1", "idle: 0.3")
    server = router_server(config)
    client = closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="sk-client-1", max_retries=0)
    )
    role, *rest = chat_chunks(["thought", " through"])
    tail = b"".join(
        b"data: " + (orjson.dumps(f) if isinstance(f, dict) else f.encode()) + b"\n\n" for f in rest
    )
    fake_upstream.add("/v1/chat/completions", sse_reply([role, tail], delay=0.6))
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "thought through"
    )
