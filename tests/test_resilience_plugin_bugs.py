"""A bug in a provider plugin is contained: the attempt fails as a malformed answer (the
request moves on to the next target), a stream ends with an error event or is continued,
and the bug is logged once with its traceback and counted. Through `llm-switchyard serve`,
with a plugin installed the way users install one (an entry point), whose code raises
plain Python exceptions on purpose (tests/buggy_plugin)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)

PLUGIN_SOURCE = Path(__file__).parent / "buggy_plugin"
SECRET = "sk-buggy-secret-4242"
MSGS = [{"role": "user", "content": "hi"}]
GOOD = "/good/v1/chat/completions"
CONFIG = """
server: {{auth: none}}
providers:
  bug-request: {{plugin: buggy, base_url: "{url}/request/v1", api_key: {key},
                settings: {{fail_in: transform_request}}}}
  bug-response: {{plugin: buggy, base_url: "{url}/response/v1", api_key: {key},
                 settings: {{fail_in: transform_response}}}}
  bug-stream: {{plugin: buggy, base_url: "{url}/stream/v1", api_key: {key},
               settings: {{fail_in: transform_stream_event}}}}
  bug-error: {{plugin: buggy, base_url: "{url}/error/v1", api_key: {key},
              settings: {{fail_in: get_error}}}}
  bug-limits: {{plugin: buggy, base_url: "{url}/limits/v1", api_key: {key},
               settings: {{fail_in: get_rate_limit_info}}}}
  bug-continue: {{plugin: buggy, base_url: "{url}/continue/v1", api_key: {key},
                 settings: {{fail_in: continuation_body}}}}
  cut: {{plugin: openai, base_url: "{url}/cut/v1"}}
  good: {{plugin: openai, base_url: "{url}/good/v1"}}
models:
{models}
"""
RETRY_ONCE = "retries: {attempts: 1, backoff_initial: 0.05, backoff_max: 0.05}"
MODELS = {
    "request": ["bug-request", "good"],
    "response": ["bug-response", "good"],
    "stream": ["bug-stream", "good"],
    "resume": ["bug-stream", "good"],
    "error": ["bug-error", "good"],
    "limits": ["bug-limits"],
    "continue": ["cut", "bug-continue", "good"],
}


def _models() -> str:
    lines = []
    for name, providers in MODELS.items():
        targets = ", ".join(f"{{provider: {p}, model: m-{p}}}" for p in providers)
        lines.append(f"  {name}:\n    targets: [{targets}]\n    {RETRY_ONCE}")
        if name in ("resume", "continue"):
            lines.append("    stream_recovery: continue")
    return "\n".join(lines)


def _install_plugin(site: Path) -> dict[str, str]:
    """The test plugin as an installed distribution: its entry point in a dist-info folder
    on PYTHONPATH, next to its module. Returns the environment that sees it."""
    info = site / "llm_router_buggy-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llm-switchyard-buggy\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[llm_router]\nbuggy = llm_router_buggy\n")
    path = [str(site), str(PLUGIN_SOURCE), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in path if p)}


class Served:
    """The router process, its fake upstream, and its log lines as they are written."""

    def __init__(self, tmp: Path) -> None:
        self.upstream = FakeUpstream().start()
        config = tmp / "router.yaml"
        config.write_text(CONFIG.format(url=self.upstream.url, key=SECRET, models=_models()))
        self.router = RouterProcess(config, env=_install_plugin(tmp / "site")).start()
        self.client = closed_after_test(
            openai.OpenAI(base_url=self.router.base_url, api_key="x", max_retries=0, timeout=15)
        )

    def events(self, name: str) -> list[dict]:
        out = []
        for line in self.lines:
            if line.startswith(b"{"):
                event = orjson.loads(line)
                if event.get("event") == name:
                    out.append(event)
        return out

    @property
    def lines(self) -> list[bytes]:
        """The router's log lines so far, read as they are written (see `RouterProcess`)."""
        return self.router.stderr_lines()

    def stop(self) -> None:
        self.router.stop()
        self.upstream.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("plugin-bugs"))
    try:
        yield served
    finally:
        served.stop()
        assert not any(SECRET.encode() in line for line in served.lines)  # masked throughout


def _good(upstream: FakeUpstream) -> None:
    upstream.set_default(GOOD, json_reply(chat_completion("from good", model="m-good")))


def _ask(served: Served, model: str):
    raw = served.client.chat.completions.with_raw_response.create(model=model, messages=MSGS)
    return raw.parse().choices[0].message.content, raw.headers


def _stream(served: Served, model: str) -> tuple[str, openai.APIError | None]:
    text, error = "", None
    try:
        for chunk in served.client.chat.completions.create(model=model, messages=MSGS, stream=True):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    except openai.APIError as exc:
        error = exc
    return text, error


def _counted(served: Served, provider: str, stage: str) -> float:
    name = f'llm_router_plugin_errors_total{{provider="{provider}",stage="{stage}"}} '
    for line in httpx.get(served.router.url + "/metrics").text.splitlines():
        if line.startswith(name):
            return float(line[len(name) :])
    return 0.0


def _logged(served: Served, provider: str, stage: str) -> dict:
    """The one `plugin_error` line of this provider (each test uses its own provider)."""
    lines = [e for e in served.events("plugin_error") if e["provider"] == provider]
    assert lines, f"no plugin_error line for {provider}"
    event = lines[-1]
    assert (event["plugin"], event["stage"], event["level"]) == ("buggy", stage, "error")
    assert "Traceback" in event["exception"] and "KeyError" in event["exception"]
    assert "llm_router_buggy.py" in event["exception"]  # where the bug is
    assert "***" in event["exception"]  # the key the exception quoted, masked
    return event


def test_a_bug_reading_an_answer_fails_over_to_the_next_target(served):
    served.upstream.set_default(
        "/response/v1/chat/completions", json_reply(chat_completion("lost", model="m"))
    )
    _good(served.upstream)
    text, headers = _ask(served, "response")
    assert text == "from good" and headers["x-router-provider"] == "good"
    # a malformed answer is retried as the failure table says (once here), then moves on
    assert len(served.upstream.received("/response/v1/chat/completions")) == 2
    assert headers["x-router-attempts"] == "3"
    assert _counted(served, "bug-response", "transform_response") == 2
    _logged(served, "bug-response", "transform_response")
    (line,) = [e for e in served.events("request") if e.get("model") == "response"]
    assert line["status"] == 200
    outcomes = [a["outcome"] for a in line["attempts"]]
    assert outcomes == ["provider_plugin_error", "provider_plugin_error", "ok"]


def test_a_bug_building_the_request_goes_straight_to_the_next_target(served):
    _good(served.upstream)
    text, headers = _ask(served, "request")
    assert text == "from good"
    assert not served.upstream.received("/request/v1/chat/completions")  # nothing was sent
    assert headers["x-router-attempts"] == "2"  # not retried: it would fail the same way
    assert _counted(served, "bug-request", "transform_request") == 1
    _logged(served, "bug-request", "transform_request")


def test_a_bug_mapping_an_upstream_error_still_fails_over(served):
    down = json_reply({"error": {"message": "down"}}, 500)
    served.upstream.set_default("/error/v1/chat/completions", down)
    _good(served.upstream)
    text, headers = _ask(served, "error")
    assert text == "from good" and headers["x-router-provider"] == "good"
    assert _counted(served, "bug-error", "get_error") == 2
    _logged(served, "bug-error", "get_error")


def test_a_bug_reading_rate_limit_headers_leaves_the_answer_standing(served):
    served.upstream.set_default(
        "/limits/v1/chat/completions", json_reply(chat_completion("from limits", model="m"))
    )
    text, headers = _ask(served, "limits")
    assert text == "from limits" and headers["x-router-attempts"] == "1"
    assert _counted(served, "bug-limits", "get_rate_limit_info") == 1
    _logged(served, "bug-limits", "get_rate_limit_info")


def test_a_stream_event_bug_before_the_first_token_fails_over(served):
    stream = "/stream/v1/chat/completions"
    served.upstream.reset()
    served.upstream.set_default(stream, sse_reply(chat_chunks(["boom", "lost"], model="m")))
    served.upstream.add(GOOD, sse_reply(chat_chunks(["from ", "good"], model="m-good")))
    text, error = _stream(served, "stream")
    assert error is None and text == "from good"
    assert len(served.upstream.received(stream)) == 2  # retried once, then the next target
    assert _counted(served, "bug-stream", "transform_stream_event") == 2


def test_a_stream_event_bug_mid_answer_ends_the_stream_with_an_error_event(served):
    stream = "/stream/v1/chat/completions"
    served.upstream.reset()
    frames = chat_chunks(["Hel", "lo", " boom", " lost"], model="m")
    served.upstream.add(stream, sse_reply(frames, delay=0.2))  # relayed before the bug
    before = _counted(served, "bug-stream", "transform_stream_event")
    text, error = _stream(served, "stream")
    assert text == "Hello"  # what was relayed, then an error event: never a silent cut
    assert isinstance(error, openai.APIError)
    assert "bug-stream" in error.message and "transform_stream_event" in error.message
    assert SECRET not in error.message and "KeyError" not in error.message
    assert not served.upstream.received(GOOD)
    assert _counted(served, "bug-stream", "transform_stream_event") == before + 1
    _logged(served, "bug-stream", "transform_stream_event")


def test_a_stream_event_bug_mid_answer_is_continued_when_configured(served):
    served.upstream.reset()
    frames = chat_chunks(["Hel", "lo", " boom"], model="m")
    served.upstream.add("/stream/v1/chat/completions", sse_reply(frames, delay=0.2))
    served.upstream.add(GOOD, sse_reply(chat_chunks([" wor", "ld"], model="m-good")))
    text, error = _stream(served, "resume")
    assert error is None and text == "Hello world"
    (sent,) = served.upstream.received(GOOD)
    assert sent.json()["messages"][-1] == {"role": "assistant", "content": "Hello"}


def test_a_bug_in_continuation_body_moves_on_to_the_next_continuing_target(served):
    served.upstream.reset()
    frames = chat_chunks(["Hel", "lo", " wor", "ld"], model="m")
    served.upstream.add("/cut/v1/chat/completions", sse_reply(frames, drop_after_frames=3))
    served.upstream.add(GOOD, sse_reply(chat_chunks([" wor", "ld"], model="m-good")))
    text, error = _stream(served, "continue")
    assert error is None and text == "Hello world"
    assert not served.upstream.received("/continue/v1/chat/completions")
    assert _counted(served, "bug-continue", "continuation_body") == 1
    _logged(served, "bug-continue", "continuation_body")
