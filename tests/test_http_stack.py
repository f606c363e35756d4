"""The app is plain Starlette: middleware a user adds, exception handlers and a `root_path`
deployment apply to the API's POST endpoints as to every other route; a stream's frames are
closed when its client leaves."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from router.http.disconnect import WATCH_AFTER, DisconnectWatch
from router.http.drain import Drain
from router.http.edge import EdgeProtocol
from router.http.gctune import _YOUNG
from router.http.responses import EventStream
from router.observability.access import RequestRecord
from router.testing import RouterServer, closed_after_test

CONFIG = """
server: {auth: none}
providers:
  m: {plugin: mock, settings: {answer: "hi there"}}
models:
  chat: {targets: [{provider: m, model: m-1}]}
"""
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "x"}]}


class Audit:
    """A user's middleware: stamps every answer and remembers what it saw."""

    seen: list[str] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        Audit.seen.append(f"{scope['method']} {scope['path']}")

        async def stamped(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-audit", b"seen")]
            await send(message)

        await self.app(scope, receive, stamped)


def _customize(app: Starlette) -> None:
    app.add_middleware(Audit)
    app.add_middleware(CORSMiddleware, allow_origins=["https://app.example"], allow_methods=["*"])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG)
    return path


def test_user_middleware_runs_on_the_api_endpoints(config: Path) -> None:
    Audit.seen.clear()
    with RouterServer(config, customize=_customize) as server:
        answer = httpx.post(server.base_url + "/chat/completions", json=CHAT)
        assert answer.status_code == 200 and answer.headers["x-audit"] == "seen"
        with httpx.stream(
            "POST", server.base_url + "/chat/completions", json={**CHAT, "stream": True}
        ) as stream:
            assert stream.headers["x-audit"] == "seen"
            assert b"[DONE]" in b"".join(stream.iter_bytes())
        preflight = httpx.options(
            server.base_url + "/chat/completions",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        cors = httpx.post(
            server.base_url + "/embeddings",
            json={"model": "chat", "input": "x"},
            headers={"origin": "https://app.example"},
        )
        assert cors.headers["access-control-allow-origin"] == "https://app.example"
    assert Audit.seen.count("POST /v1/chat/completions") == 2


def test_the_test_server_runs_with_the_settings_serve_uses(config: Path) -> None:
    """uvloop, the httptools-based edge protocol and the collector tuning: what the tests
    exercise is what `llm-switchyard serve` runs (`router.http.serving`)."""
    seen: list[str] = []

    def _customize(app: Starlette) -> None:
        class Probe:
            def __init__(self, app: ASGIApp) -> None:
                self.app = app

            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
                seen.append(type(asyncio.get_running_loop()).__module__)
                await self.app(scope, receive, send)

        app.add_middleware(Probe)

    config.write_text(
        CONFIG.replace("server: {auth: none}", "server: {auth: none, max_headers: 20}")
    )
    with RouterServer(config, customize=_customize) as server:
        assert httpx.post(server.base_url + "/chat/completions", json=CHAT).status_code == 200
        assert server._server.config.http_protocol_class is EdgeProtocol
        crowded = {f"x-extra-{i}": "v" for i in range(25)}  # the config's limit on headers
        refused = httpx.post(server.base_url + "/chat/completions", json=CHAT, headers=crowded)
        assert refused.status_code == 431
    assert seen and seen[-1].startswith("uvloop")
    assert gc.get_threshold()[0] >= _YOUNG and gc.get_freeze_count() > 0


def test_a_root_path_deployment_serves_the_api_below_it(config: Path) -> None:
    """Behind a proxy that serves the router under `/llm` and strips that prefix (uvicorn's
    `root_path`): the app sees `/llm/v1/...` with `root_path` `/llm`, and routes by the rest."""
    with RouterServer(config, root_path="/llm") as server:
        client = closed_after_test(
            openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        )
        assert client.chat.completions.create(**CHAT).choices[0].message.content == "hi there"
        chunks = client.chat.completions.create(**CHAT, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert [m.id for m in client.models.list()] == ["chat"]
        missing = httpx.post(server.url + "/v1/nothing", json=CHAT)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_the_apps_exception_handlers_apply_on_the_way_to_the_api(config: Path) -> None:
    """An exception a user's middleware raises on the way to an API endpoint gets the app's
    500 handler (the router's answer in the OpenAI envelope), as on any other route."""

    class Gate:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].endswith("/embeddings"):
                raise RuntimeError("the gate is broken")
            await self.app(scope, receive, send)

    with RouterServer(config, customize=lambda app: app.add_middleware(Gate)) as server:
        crash = httpx.post(server.base_url + "/embeddings", json={"model": "chat", "input": "x"})
        assert crash.status_code == 500
        assert crash.json()["error"]["code"] == "internal_error"
        assert httpx.post(server.base_url + "/chat/completions", json=CHAT).status_code == 200


def test_a_stream_left_by_its_client_closes_its_frames_at_once() -> None:
    asyncio.run(_stream_left_by_its_client())


async def _stream_left_by_its_client() -> None:
    closed = asyncio.Event()

    async def frames():  # an upstream that is slow to say more
        try:
            yield b"data: {}\n\n"
            await asyncio.sleep(3600)
            yield b"never"
        finally:
            closed.set()

    async def receive() -> dict:
        return {"type": "http.disconnect"}  # the client has gone

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def serve() -> None:
        watch = DisconnectWatch(receive, Drain())
        record = RequestRecord("POST", "/v1/chat/completions", "rid", 0.0, None)
        stream = EventStream(held, [], watch, record, on_close=lambda: None)
        await stream({"type": "http"}, receive, send)

    held = frames()  # (held here: it is not the garbage collector that closes it)
    await asyncio.wait_for(serve(), WATCH_AFTER + 5)
    assert closed.is_set()
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
