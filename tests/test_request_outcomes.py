"""Every API request leaves exactly one access-log line and one request-metric sample, with
its real outcome: answered, failed, client gone (before or during its answer), or stream
failed after so many bytes; an exception nobody expected included."""

from __future__ import annotations

import socket
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
import structlog

from router import errors
from router.observability import access
from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunks,
    closed_after_test,
    json_reply,
    sse_reply,
)
from router.upstream.relay import StreamRelay

CLIENT_KEY = "sk-outcomes-client"
MESSAGES = [{"role": "user", "content": "hi"}]
CONFIG = """
server: {{watch_config: false}}
providers:
  quick: {{plugin: mock, settings: {{answer: "all of it"}}}}
  slow: {{plugin: mock, settings: {{words: 60, chunk_delay: 0.1}}}}
  waits: {{plugin: mock, settings: {{latency: 30}}}}
  up: {{plugin: openai, base_url: "{url}/v1", api_key: sk-outcomes-upstream}}
models:
  quick: {{targets: [{{provider: quick, model: m}}]}}
  sentinel: {{targets: [{{provider: quick, model: m}}]}}
  slow: {{targets: [{{provider: slow, model: m}}]}}
  waits: {{targets: [{{provider: waits, model: m}}]}}
  up: {{targets: [{{provider: up, model: up-model}}], retries: {{attempts: 0}}}}
keys:
  app: {{key: {key}}}
"""
COMPLETIONS = "/v1/chat/completions"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Served]:
    path = tmp_path_factory.mktemp("outcomes") / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url=upstream.url, key=CLIENT_KEY)))
    router = RouterProcess(path).start()
    try:
        yield Served(router)
    finally:
        router.stop()


class Served:
    """`llm-switchyard serve`, its access log read as it is written, its metrics read by scrape."""

    def __init__(self, router: RouterProcess) -> None:
        self.router = router
        self.url = router.url
        self.sentinels = 0

    def post(self, body: dict[str, Any], request_id: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + COMPLETIONS, json=body, headers=_headers(request_id), **kw)

    def requests_total(self) -> dict[tuple[str, ...], float]:
        """`llm_router_requests_total`, by (model, status, outcome, error)."""
        out = {}
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            if line.startswith("llm_router_requests_total{"):
                labels, value = line[len("llm_router_requests_total{") :].rsplit("} ", 1)
                pairs = dict(part.split("=", 1) for part in labels.split(","))
                key = tuple(pairs[n].strip('"') for n in ("model", "status", "outcome", "error"))
                out[key] = float(value)
        return out

    def lines_of(self, request_id: str) -> list[dict[str, Any]]:
        """The access-log lines of `request_id`, once a request made after it was logged
        (so that a second line, if any, would be there too)."""
        self.router.wait_for_line(lambda line: request_id.encode() in line)
        self.sentinels += 1
        sentinel = f"sentinel-{self.sentinels}"
        reply = self.post({"model": "sentinel", "messages": MESSAGES}, sentinel)
        assert reply.status_code == 200
        self.router.wait_for_line(lambda line: sentinel.encode() in line)
        lines = [orjson.loads(line) for line in self.router.stderr_lines() if line[:1] == b"{"]
        return [line for line in lines if line.get("request_id") == request_id]

    def one_line_and_one_sample(
        self, request_id: str, before: dict[tuple[str, ...], float]
    ) -> dict[str, Any]:
        """The request's one line; its metric labels grew by one, and no others did."""
        (line,) = self.lines_of(request_id)
        after = self.requests_total()
        grown = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
        grown.pop(("sentinel", "200", "answered", ""))
        labels = (line.get("model") or "", str(line["status"]), line["outcome"])
        assert grown == {(*labels, line.get("error") or ""): 1}
        return line


def _headers(request_id: str) -> dict[str, str]:
    return {"authorization": f"Bearer {CLIENT_KEY}", "x-request-id": request_id}


def test_answers_are_logged_as_answered(served: Served) -> None:
    before = served.requests_total()
    reply = served.post({"model": "quick", "messages": MESSAGES}, "answered-json")
    assert reply.status_code == 200
    line = served.one_line_and_one_sample("answered-json", before)
    assert (line["status"], line["outcome"]) == (200, "answered")
    assert "error" not in line and "bytes_sent" not in line

    before = served.requests_total()
    body = {"model": "quick", "messages": MESSAGES, "stream": True}
    with httpx.stream(
        "POST", served.url + COMPLETIONS, json=body, headers=_headers("answered-stream")
    ) as response:
        received = response.read()
    assert received.endswith(b"data: [DONE]\n\n")
    line = served.one_line_and_one_sample("answered-stream", before)
    assert (line["status"], line["outcome"], line["bytes_sent"]) == (200, "answered", len(received))
    assert "error" not in line


def test_failures_are_logged_with_their_class(served: Served, upstream: FakeUpstream) -> None:
    upstream.add(COMPLETIONS, json_reply({"error": {"message": "boom"}}, status=500))
    before = served.requests_total()
    reply = served.post({"model": "up", "messages": MESSAGES}, "failed-upstream")
    assert reply.status_code == 502
    line = served.one_line_and_one_sample("failed-upstream", before)
    assert (line["status"], line["outcome"], line["error"]) == (
        502,
        "failed",
        "upstream_server_error",
    )

    before = served.requests_total()
    reply = served.post({"model": "nope", "messages": MESSAGES}, "failed-model")
    assert reply.status_code == 404
    line = served.one_line_and_one_sample("failed-model", before)
    assert (line["status"], line["outcome"], line["error"]) == (404, "failed", "model_not_found")


def test_a_client_gone_before_its_answer_is_logged_499(served: Served) -> None:
    before = served.requests_total()
    with pytest.raises(httpx.ReadTimeout):
        served.post({"model": "waits", "messages": MESSAGES}, "gone-before", timeout=0.3)
    line = served.one_line_and_one_sample("gone-before", before)
    assert (line["status"], line["outcome"], line["error"]) == (
        499,
        "client_gone",
        "client_closed_request",
    )


def test_a_client_gone_during_its_stream_is_logged_with_the_bytes_sent(served: Served) -> None:
    before = served.requests_total()
    body = {"model": "slow", "messages": MESSAGES, "stream": True}
    with httpx.stream(
        "POST", served.url + COMPLETIONS, json=body, headers=_headers("gone-during")
    ) as response:
        first = next(response.iter_raw())
    line = served.one_line_and_one_sample("gone-during", before)
    assert (line["status"], line["outcome"], line["error"]) == (
        200,
        "client_gone",
        "client_closed_request",
    )
    assert line["bytes_sent"] >= len(first) > 0


def test_a_stream_that_failed_is_logged_as_failed_after_its_bytes(
    served: Served, upstream: FakeUpstream
) -> None:
    frames = chat_chunks(["one", " two", " three"])
    upstream.add(COMPLETIONS, sse_reply(frames, drop_after_frames=3))  # cut mid-answer
    before = served.requests_total()
    body = {"model": "up", "messages": MESSAGES, "stream": True}
    with httpx.stream(
        "POST", served.url + COMPLETIONS, json=body, headers=_headers("stream-failed")
    ) as response:
        received = response.read()
    assert response.status_code == 200
    assert b"[DONE]" not in received
    last = received.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    assert orjson.loads(last[len(b"data: ") :])["error"]["code"] == "upstream_connection_error"
    line = served.one_line_and_one_sample("stream-failed", before)
    assert (line["status"], line["outcome"], line["error"]) == (
        200,
        "stream_failed",
        "upstream_connection_error",
    )
    assert line["bytes_sent"] == len(received)


def test_a_client_gone_while_sending_its_body_is_a_disconnect_not_a_crash(served: Served):
    before = served.requests_total()
    body = orjson.dumps({"model": "quick", "messages": MESSAGES})
    with socket.create_connection(("127.0.0.1", served.router.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: router\r\n"
            + f"authorization: Bearer {CLIENT_KEY}\r\nx-request-id: gone-body\r\n".encode()
            + f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
    line = served.one_line_and_one_sample("gone-body", before)
    assert (line["status"], line["outcome"], line["error"]) == (
        499,
        "client_gone",
        "client_closed_request",
    )
    logged = b"\n".join(served.router.stderr_lines())
    assert b"Traceback" not in logged and b'"level":"error"' not in logged


def test_the_error_class_is_the_routers_code_never_an_upstreams() -> None:
    """Metric labels stay bounded: a code an upstream made up is not one."""
    made_up = errors.UpstreamServerError("boom", code="upstream-said-x7")
    assert access.error_class(made_up) == "upstream_server_error"
    assert access.error_class(errors.UpstreamBadRequest("no", code="x")) == "invalid_request"
    assert access.error_class(errors.RateLimited("slow down")) == "rate_limit_exceeded"


# -- an exception nobody expected: in-process, where something on the path can be broken --


@pytest.fixture
def in_process(router_server: Callable[..., Any], fake_upstream: FakeUpstream) -> Any:
    return router_server(CONFIG.format(url=fake_upstream.url, key=CLIENT_KEY))


def _requests_total(url: str, **labels: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("llm_router_requests_total{") and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_for(entries: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while not any(e["event"] == event for e in entries):
        assert time.monotonic() < deadline, f"no {event} event"
        time.sleep(0.02)
    return [e for e in entries if e["event"] == event]


def test_an_unexpected_exception_is_a_500_with_one_line(in_process, monkeypatch):
    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug on the request path")

    monkeypatch.setattr("router.http.endpoints.check_body", broken)
    labels = {"status": "500", "outcome": "failed", "error": "internal_error"}
    before = _requests_total(in_process.url, **labels)
    client = closed_after_test(
        openai.OpenAI(base_url=in_process.base_url, api_key=CLIENT_KEY, max_retries=0)
    )
    with structlog.testing.capture_logs() as entries:
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(
                model="quick", messages=MESSAGES, extra_headers={"x-request-id": "bug-json"}
            )
        (line,) = _wait_for(entries, "request")
        (crash,) = _wait_for(entries, "unhandled_error")
    assert failed.value.status_code == 500
    assert failed.value.body["code"] == "internal_error"
    assert failed.value.body["type"] == "server_error"
    assert (line["request_id"], line["status"], line["outcome"], line["error"]) == (
        "bug-json",
        500,
        "failed",
        "internal_error",
    )
    assert crash["request_id"] == "bug-json" and crash["exc_info"]
    assert _requests_total(in_process.url, **labels) - before == 1


def test_an_unexpected_exception_mid_stream_ends_it_with_an_error_event(in_process, monkeypatch):
    relay = StreamRelay.__aiter__

    async def breaks_after_one_frame(self: StreamRelay) -> Any:
        async for frame in relay(self):
            yield frame
            raise RuntimeError("a bug mid-stream")

    monkeypatch.setattr(StreamRelay, "__aiter__", breaks_after_one_frame)
    labels = {"model": "quick", "outcome": "stream_failed", "error": "internal_error"}
    before = _requests_total(in_process.url, **labels)
    client = closed_after_test(
        openai.OpenAI(base_url=in_process.base_url, api_key=CLIENT_KEY, max_retries=0)
    )
    with structlog.testing.capture_logs() as entries:
        stream = client.chat.completions.create(model="quick", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError) as failed:
            for _ in stream:
                pass
        (line,) = _wait_for(entries, "request")
        (crash,) = _wait_for(entries, "unhandled_error")
    assert failed.value.body["code"] == "internal_error"
    assert (line["status"], line["outcome"], line["error"]) == (
        200,
        "stream_failed",
        "internal_error",
    )
    assert line["bytes_sent"] > 0 and crash["exc_info"]
    assert _requests_total(in_process.url, **labels) - before == 1
