"""A client key reaches only the models it may use, on every path a request can take:
fallbacks, the context fallback and stream continuation. A fallback the key may not use is
skipped; when nothing is left, the client gets the original failure."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import openai
import orjson
import pytest

from router.cli import main
from router.graph.load import load_graph
from router.graph.reload import carry_over
from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)

KEY_A = "sk-client-only-chat-7Hq"
KEY_BOTH = "sk-client-everything-3Zp"
KEY_CHEAP = "sk-client-chat-and-cheap-5Wd"
KEYS = {"KEY_A": KEY_A, "KEY_BOTH": KEY_BOTH, "KEY_CHEAP": KEY_CHEAP}
BASIC = "/basic/v1/chat/completions"
PREMIUM = "/premium/v1/chat/completions"
LARGE = "/large/v1/chat/completions"
CHEAP = "/cheap/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
CONFIG = """
providers:
  basic: {{plugin: openai, base_url: "{url}/basic/v1"}}
  prem: {{plugin: openai, base_url: "{url}/premium/v1"}}
  big: {{plugin: openai, base_url: "{url}/large/v1"}}
  low: {{plugin: openai, base_url: "{url}/cheap/v1"}}
models:
  chat:
    targets: [{{provider: basic, model: basic-model}}]
    retries: {{attempts: 0}}
    fallbacks: [premium]
    context_fallback: large
  resume:
    targets: [{{provider: basic, model: basic-model}}]
    retries: {{attempts: 0}}
    stream_recovery: continue
    fallbacks: [premium]
  premium:
    targets: [{{provider: prem, model: premium-model}}]
    retries: {{attempts: 0}}
    fallbacks: [cheap]
  cheap:
    targets: [{{provider: low, model: cheap-model}}]
  large:
    targets: [{{provider: big, model: large-model}}]
    retries: {{attempts: 0}}
keys:
  a: {{key: "${{KEY_A}}", models: [chat, resume]}}
  both: {{key: "${{KEY_BOTH}}", models: ["*"]}}
  c: {{key: "${{KEY_CHEAP}}", models: [chat, cheap]}}
"""
SERVER_ERROR = {"error": {"message": "primary exploded", "type": "server_error", "code": None}}
TOO_LONG = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}


def write_config(directory: Path, url: str) -> Path:
    path = directory / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url=url)))
    return path


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def router(upstream, tmp_path_factory) -> Iterator[RouterProcess]:
    config = write_config(tmp_path_factory.mktemp("keys"), upstream.url)
    with RouterProcess(config, env=KEYS) as process:
        yield process


@pytest.fixture
def fake(upstream) -> FakeUpstream:
    upstream.reset()
    upstream.set_default(PREMIUM, json_reply(chat_completion("from premium")))
    upstream.set_default(LARGE, json_reply(chat_completion("from large")))
    upstream.set_default(CHEAP, json_reply(chat_completion("from cheap")))
    return upstream


def client(router: RouterProcess, key: str) -> openai.OpenAI:
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key=key, max_retries=0, timeout=15)
    )


def failure_of(router: RouterProcess, key: str, model: str = "chat") -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as failed:
        client(router, key).chat.completions.create(model=model, messages=MSGS)
    return failed.value


def test_a_fallback_the_key_may_not_use_is_skipped_and_the_original_failure_returned(router, fake):
    fake.add(BASIC, json_reply(SERVER_ERROR, 500))
    error = failure_of(router, KEY_A)
    assert error.status_code == 502
    assert error.body == {
        "message": "upstream 'basic' returned 500: primary exploded",
        "type": "server_error",
        "param": None,
        "code": "upstream_server_error",
    }
    assert not fake.received(PREMIUM)

    fake.add(BASIC, json_reply(SERVER_ERROR, 500))
    answer = client(router, KEY_BOTH).chat.completions.with_raw_response.create(
        model="chat", messages=MSGS
    )
    assert answer.parse().choices[0].message.content == "from premium"
    assert answer.headers["x-router-model"] == "premium"
    assert len(fake.received(PREMIUM)) == 1


def test_a_skipped_fallbacks_own_fallbacks_the_key_may_use_are_still_tried(router, fake):
    fake.add(BASIC, json_reply(SERVER_ERROR, 500))
    answer = client(router, KEY_CHEAP).chat.completions.with_raw_response.create(
        model="chat", messages=MSGS
    )
    assert answer.parse().choices[0].message.content == "from cheap"
    assert answer.headers["x-router-model"] == "cheap"
    assert not fake.received(PREMIUM)


def test_a_context_fallback_the_key_may_not_use_gives_the_context_error(router, fake):
    fake.add(BASIC, json_reply(TOO_LONG, 400))
    error = failure_of(router, KEY_A)
    assert error.status_code == 400
    assert isinstance(error.body, dict) and error.body["code"] == "context_length_exceeded"
    assert "maximum context length" in error.message
    assert not fake.received(LARGE) and not fake.received(PREMIUM)

    fake.add(BASIC, json_reply(TOO_LONG, 400))
    answer = client(router, KEY_BOTH).chat.completions.with_raw_response.create(
        model="chat", messages=MSGS
    )
    assert answer.parse().choices[0].message.content == "from large"
    assert answer.headers["x-router-model"] == "large"


def test_a_stream_skips_the_fallback_the_key_may_not_use(router, fake):
    fake.add(BASIC, json_reply(SERVER_ERROR, 500))
    with pytest.raises(openai.APIStatusError) as failed:
        client(router, KEY_A).chat.completions.create(model="chat", messages=MSGS, stream=True)
    assert failed.value.status_code == 502 and "primary exploded" in failed.value.message
    assert not fake.received(PREMIUM)

    fake.add(BASIC, json_reply(SERVER_ERROR, 500))
    fake.add(PREMIUM, sse_reply(chat_chunks(["from ", "premium"])))
    with client(router, KEY_BOTH).chat.completions.with_streaming_response.create(
        model="chat", messages=MSGS, stream=True
    ) as response:
        assert response.headers["x-router-model"] == "premium"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "from premium"


def test_a_broken_stream_is_not_continued_by_a_model_the_key_may_not_use(router, fake):
    broken = sse_reply(chat_chunks(["Hel", "lo", " wor", "ld"]), drop_after_frames=3)
    fake.add(BASIC, broken)
    stream = client(router, KEY_A).chat.completions.create(
        model="resume", messages=MSGS, stream=True
    )
    chunks = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in stream:
            chunks.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert "upstream 'basic'" in failed.value.message
    assert not fake.received(PREMIUM)

    fake.add(BASIC, broken)
    fake.add(PREMIUM, sse_reply(chat_chunks([" wor", "ld"])))
    stream = client(router, KEY_BOTH).chat.completions.create(
        model="resume", messages=MSGS, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello world"
    assert len(fake.received(PREMIUM)) == 1


def test_the_access_log_names_the_model_that_answered(tmp_path, fake_upstream):
    fake_upstream.set_default(BASIC, json_reply(SERVER_ERROR, 500))
    fake_upstream.set_default(PREMIUM, json_reply(chat_completion("from premium")))
    router = RouterProcess(write_config(tmp_path, fake_upstream.url), env=KEYS).start()
    try:
        failure_of(router, KEY_A)
        client(router, KEY_BOTH).chat.completions.create(model="chat", messages=MSGS)
    finally:
        _, err = router.stop()
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith(b"{")]
    requests = {line["key"]: line for line in lines if line["event"] == "request"}
    assert requests["a"]["status"] == 502 and "answered_by" not in requests["a"]
    assert [a["target"] for a in requests["a"]["attempts"]] == ["basic/basic-model"]
    assert requests["both"]["status"] == 200 and requests["both"]["answered_by"] == "premium"
    assert len(fake_upstream.received(PREMIUM)) == 1


def test_explain_shows_the_fallbacks_a_key_skips_and_why(tmp_path, capsys):
    config = str(write_config(tmp_path, "http://127.0.0.1:9"))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in KEYS.items():
            patch.setenv(name, value)
        assert main(["explain", "--config", config, "--model", "chat", "--key", "a"]) == 0
        out = capsys.readouterr().out
        assert "fallbacks for key 'a' (breadth first, each once): none" in out
        assert "  skipped: premium, cheap (not in the `models` of key 'a')" in out
        assert (
            "context fallback for key 'a': none (a context-length error goes to the client)" in out
        )
        assert "  skipped: large (not in the `models` of key 'a')" in out
        assert "fallback model premium" not in out

        assert main(["explain", "--config", config, "--model", "chat", "--key", "both"]) == 0
        out = capsys.readouterr().out
        assert "fallbacks for key 'both' (breadth first, each once): premium -> cheap" in out
        assert "context fallback for key 'both': large" in out
        assert "skipped" not in out and "fallback model premium" in out

        assert main(["explain", "--config", config, "--model", "chat"]) == 0
        out = capsys.readouterr().out
        assert "fallbacks (breadth first, each once): premium -> cheap" in out
        assert "  keys skip the fallbacks they may not use (not in their `models`):" in out
        assert "    a skips premium, cheap, large" in out
        assert "    c skips premium, large" in out

        assert main(["explain", "--config", config, "--model", "chat", "--key", "c"]) == 0
        out = capsys.readouterr().out
        assert "fallbacks for key 'c' (breadth first, each once): cheap" in out
        assert "  skipped: premium (not in the `models` of key 'c')" in out


def test_a_reload_keeps_each_keys_chains_on_the_live_targets(tmp_path):
    config = write_config(tmp_path, "http://127.0.0.1:9")
    old = load_graph(config, KEYS)
    new = carry_over(old, load_graph(config, KEYS))
    for reach in new.reach.values():
        for name, chain in reach.chains.items():
            assert all(route is new.routes[route.name] for route in chain), name
    kept = new.reach["c"].chains["chat"]
    assert [r.name for r in kept] == ["chat", "cheap"]
    assert kept[1].targets[0] is old.routes["cheap"].targets[0]  # runtime state carried over
