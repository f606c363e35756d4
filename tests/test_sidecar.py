"""Running as a sidecar: SIGHUP reloads, SIGTERM drains, deployment files parse."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import yaml

from router.testing import (
    FakeUpstream,
    Reply,
    RouterProcess,
    chat_chunk,
    chat_chunks,
    closed_after_test,
    sse_reply,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
server: {{watch_config: false, drain_seconds: {drain}}}
providers:
  m: {{plugin: mock, settings: {{answer: "{answer} and more words", chunk_delay: 0.25}}}}
  stalls: {{plugin: mock, settings: {{answer: "first second third", chunk_delay: 20}}}}
  up: {{plugin: openai, base_url: "{upstream}/v1", api_key: sk-sidecar-upstream}}
models:
  chat: {{targets: [{{provider: m, model: m-1}}]}}
  stalls: {{targets: [{{provider: stalls, model: m-1}}]}}
  held: {{targets: [{{provider: up, model: up-1}}], retries: {{attempts: 0}}}}
keys:
  app: {{key: sk-sidecar-client}}
"""
CLIENT_KEY = "sk-sidecar-client"
MESSAGES = [{"role": "user", "content": "x"}]


def ask(url: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": "chat", "messages": MESSAGES},
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
        timeout=10,
    )


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def hold_a_request(router: RouterProcess, upstream: FakeUpstream) -> socket.socket:
    """A request to `held` that is in flight (its upstream never answers) until the caller
    closes the returned socket."""
    body = orjson.dumps({"model": "held", "messages": MESSAGES})
    sock = socket.create_connection(("127.0.0.1", router.port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: router\r\n"
        + f"authorization: Bearer {CLIENT_KEY}\r\n".encode()
        + f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    wait_until(lambda: bool(upstream.received("/v1/chat/completions")), "request not held")
    return sock


def request_lines(err: bytes) -> dict[str, dict[str, Any]]:
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith(b"{")]
    return {line["request_id"]: line for line in lines if line["event"] == "request"}


def test_sighup_reloads_and_sigterm_drains_streams_in_flight(tmp_path: Path, fake_upstream) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(drain=10, answer="one", upstream=fake_upstream.url))
    fake_upstream.set_default("/v1/chat/completions", Reply(hang=True))
    release = threading.Event()
    held: socket.socket | None = None
    router = RouterProcess(path).start()
    try:
        assert router.process is not None
        assert ask(router.url).json()["choices"][0]["message"]["content"].startswith("one")
        path.write_text(CONFIG.format(drain=10, answer="two", upstream=fake_upstream.url))
        router.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not ask(router.url).json()["choices"][0]["message"]["content"].startswith("two"):
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.05)

        # This request keeps the router draining while the test looks at it: without it, a
        # slow test could find the router gone once the stream below had finished.
        held = hold_a_request(router, fake_upstream)
        # A stream is in flight (`create` returns with its first chunk) when SIGTERM arrives;
        # the rest of it waits for `release`, so it is mid-stream however slow the machine.
        # (The router answers once the first words are in: they come with the first frame.)
        first = chat_chunk({"role": "assistant", "content": "two"})
        frames = [first, *chat_chunks([" and", " more", " words"])[1:]]
        fake_upstream.add("/v1/chat/completions", sse_reply(frames, release=release))
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key=CLIENT_KEY, max_retries=0)
        )
        stream = client.chat.completions.create(model="held", messages=MESSAGES, stream=True)
        received: list[str] = []
        reader = threading.Thread(
            target=lambda: received.extend(
                c.choices[0].delta.content or "" for c in stream if c.choices
            )
        )
        reader.start()
        router.process.send_signal(signal.SIGTERM)
        readiness = router.url + "/health/readiness"
        wait_until(lambda: httpx.get(readiness).status_code == 503, "readiness still 200")
        refused = ask(router.url)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "shutting_down"
        assert refused.headers["connection"] == "close" and refused.headers["retry-after"] == "1"
        assert reader.is_alive()  # the stream is still waiting for its upstream
        release.set()
        reader.join(10)
        assert not reader.is_alive()
        stream.close()
        client.close()
        assert "".join(received) == "two and more words"  # finished, not cut
        assert router.process.poll() is None  # still draining: a request is in flight
        held.close()  # the last request in flight: its client leaves
        assert router.process.wait(10) is not None
    finally:
        release.set()
        if held is not None:
            held.close()
        _, err = router.stop()
    assert b'"event":"drained"' in err and b'"left_in_flight":0' in err
    assert b'"interrupted":0' in err
    line = request_lines(err)[refused.headers["x-request-id"]]  # a refusal is logged too
    assert (line["status"], line["outcome"], line["error"]) == (503, "failed", "shutting_down")


def test_work_in_flight_when_the_drain_ends_is_told_it_was_cut(tmp_path: Path, fake_upstream):
    """Streams still open when `drain_seconds` end get an error event, never a silent cut;
    a request still waiting for its upstream gets a 503. Each is logged as what it was."""
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(drain=0.3, answer="one", upstream=fake_upstream.url))
    fake_upstream.set_default("/v1/chat/completions", Reply(hang=True))
    router = RouterProcess(path).start()
    outcome: dict[str, Any] = {}
    raw_started = threading.Event()
    try:
        assert router.process is not None
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key=CLIENT_KEY, max_retries=0)
        )
        # Each `create` returns once the stream's first words are out; the rest stalls.
        sdk_stream = client.chat.completions.create(
            model="stalls",
            messages=MESSAGES,
            stream=True,
            extra_headers={"x-request-id": "drain-sdk"},
        )

        def read_sdk() -> None:
            words: list[str] = []
            try:
                for chunk in sdk_stream:
                    words += [c.delta.content or "" for c in chunk.choices]
            except openai.APIError as exc:
                outcome["sdk_error"] = exc
            outcome["sdk_words"] = "".join(words)

        def read_raw() -> None:
            body = b""
            with httpx.stream(
                "POST",
                router.base_url + "/chat/completions",
                json={"model": "stalls", "messages": MESSAGES, "stream": True},
                headers={"authorization": f"Bearer {CLIENT_KEY}", "x-request-id": "drain-raw"},
                timeout=30,
            ) as response:
                for part in response.iter_bytes():
                    body += part
                    raw_started.set()
            outcome["raw"] = body

        def ask_json() -> None:
            try:
                client.chat.completions.create(
                    model="held", messages=MESSAGES, extra_headers={"x-request-id": "drain-json"}
                )
            except openai.APIStatusError as exc:
                outcome["json_error"] = exc

        readers = [threading.Thread(target=f) for f in (read_sdk, read_raw, ask_json)]
        for reader in readers:
            reader.start()
        assert raw_started.wait(10)
        wait_until(lambda: bool(fake_upstream.received("/v1/chat/completions")), "not held")
        router.process.send_signal(signal.SIGTERM)
        for reader in readers:
            reader.join(15)
            assert not reader.is_alive()
        client.close()
        assert router.process.wait(10) is not None
    finally:
        _, err = router.stop()

    sdk_error = outcome["sdk_error"]
    assert isinstance(sdk_error, openai.APIError) and isinstance(sdk_error.body, dict)
    assert sdk_error.body["code"] == "shutting_down"
    assert outcome["sdk_words"] == "first"  # what came before the cut, and no more
    raw: bytes = outcome["raw"]
    assert b"[DONE]" not in raw
    *_, last = [event for event in raw.split(b"\n\n") if event]
    assert last.startswith(b"data: ")
    error = orjson.loads(last[6:])["error"]
    assert error["code"] == "shutting_down" and "shut down" in error["message"]
    json_error = outcome["json_error"]
    assert json_error.status_code == 503 and json_error.body["code"] == "shutting_down"

    lines = request_lines(err)
    for request_id in ("drain-sdk", "drain-raw"):
        line = lines[request_id]
        assert (line["status"], line["outcome"], line["error"]) == (
            200,
            "stream_failed",
            "shutting_down",
        )
    assert lines["drain-raw"]["bytes_sent"] == len(raw)
    line = lines["drain-json"]
    assert (line["status"], line["outcome"], line["error"]) == (503, "failed", "shutting_down")
    assert b'"interrupted":3' in err and b'"left_in_flight":0' in err


def test_deployment_files_parse() -> None:
    """Docker cannot run here: check the files at least parse and say what they should."""
    deploy = ROOT / "examples" / "deploy"
    compose = yaml.safe_load((deploy / "docker-compose.yaml").read_text())
    assert "router" in compose["services"]
    documents = list(yaml.safe_load_all((deploy / "kubernetes.yaml").read_text()))
    kinds = {doc["kind"] for doc in documents}
    assert {"ConfigMap", "Pod"} <= kinds
    pod = next(doc for doc in documents if doc["kind"] == "Pod")
    names = [c["name"] for c in pod["spec"]["containers"]]
    assert "llm-switchyard" in names and len(names) >= 2
    config_map = next(doc for doc in documents if doc["kind"] == "ConfigMap")
    from router.config.loader import load_config_text

    load_config_text(
        config_map["data"]["router.yaml"],
        "configmap",
        {"ROUTER_KEY": "x" * 8, "OPENAI_API_KEY": "y" * 8},
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER " in dockerfile and "HEALTHCHECK" in dockerfile
