"""A conformance suite every provider plugin runs against itself.

Subclass `ProviderConformance` in a test module, describe the upstream (its paths, the
replies it gives, the errors it can produce) and pytest collects the inherited tests: a real
router in front of a `FakeUpstream`, called with the official `openai` SDK.

    class TestAcmeConformance(ProviderConformance):
        plugin = "acme"
        chat_path = "/v1/chat/completions"

        def chat_reply(self, content): ...
        def stream_reply(self, pieces): ...
        def error_cases(self): return [ErrorCase("rate limited", reply, openai.RateLimitError, 429)]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from router.testing.closing import closed_after_test
from router.testing.fake_upstream import FakeUpstream, Received, Reply
from router.types import Operation

MESSAGES = [{"role": "user", "content": "Say hello"}]
# What the OpenAI schema requires of a `chat.completion` (CreateChatCompletionResponse).
_REQUIRED = ("id", "object", "created", "model", "choices")
_CHOICE_REQUIRED = ("index", "message", "finish_reason", "logprobs")
_MESSAGE_REQUIRED = ("role", "content", "refusal")


def assert_chat_completion(data: dict[str, Any]) -> None:
    """`data` has every key the OpenAI schema requires of a chat completion; and where the
    OpenAI OpenAPI description is available (OPENAI_OPENAPI_SPEC), it validates in full."""
    from router.testing.openapi import OpenAPIValidator, spec_path

    assert data["object"] == "chat.completion"
    missing = [k for k in _REQUIRED if k not in data]
    for choice in data["choices"]:
        missing += [f"choices[].{k}" for k in _CHOICE_REQUIRED if k not in choice]
        missing += [
            f"choices[].message.{k}" for k in _MESSAGE_REQUIRED if k not in choice["message"]
        ]
    assert not missing, f"the answer lacks {missing}"
    path = spec_path()
    if path is not None:
        OpenAPIValidator(path).validate("CreateChatCompletionResponse", data)


@dataclass
class ErrorCase:
    """An upstream failure and what the client must see."""

    name: str
    reply: Reply
    exception: type[Exception]
    status: int
    code: str | None = None  # the error envelope's `code`, when it matters
    extra: dict[str, Any] = field(default_factory=dict)


class ProviderConformance:
    """Inherited tests; subclasses set the class attributes and implement the reply methods."""

    plugin: str = ""
    base_path: str = "/v1"  # appended to the fake's URL to form the provider's base_url
    chat_path: str = "/v1/chat/completions"  # where the fake sees chat requests
    api_key: str | None = "conformance-key-0123456789"
    settings: dict[str, Any] = {}
    upstream_model: str = "test-model"

    # -- what the subclass describes ------------------------------------------------------

    def chat_reply(self, content: str) -> Reply:
        raise NotImplementedError

    def stream_reply(self, pieces: list[str]) -> Reply:
        raise NotImplementedError

    def midstream_error_reply(self, pieces: list[str]) -> Reply | None:
        """A stream that fails after `pieces`; None where the upstream has no such thing."""
        return None

    def error_cases(self) -> list[ErrorCase]:
        return []

    def assert_credentials(self, received: Received) -> None:
        """Check the upstream got the provider's credential, the way it expects it."""
        assert self.api_key is not None
        assert any(self.api_key in value for value in received.headers.values())

    # -- plumbing -------------------------------------------------------------------------

    def config(self, upstream: FakeUpstream) -> str:
        provider: dict[str, Any] = {
            "plugin": self.plugin,
            "base_url": upstream.url + self.base_path,
            "settings": self.settings,
            "timeouts": {"connect": 2, "first_token": 5, "idle": 5, "total": 10},
        }
        if self.api_key is not None:
            provider["api_key"] = self.api_key
        config = {
            "server": {"auth": "none"},
            "providers": {"p": provider},
            "models": {
                "m": {
                    "targets": [{"provider": "p", "model": self.upstream_model}],
                    "retries": {"attempts": 0},
                }
            },
        }
        return orjson.dumps(config).decode()  # JSON is YAML

    @pytest.fixture
    def conformance(self, fake_upstream: FakeUpstream, router_server: Any) -> Any:
        import openai

        server = router_server(self.config(fake_upstream))
        client = closed_after_test(
            openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        )
        return fake_upstream, server, client

    # -- the suite ------------------------------------------------------------------------

    def test_conformance_plugin_is_registered(self) -> None:
        from router.plugins import provider_plugins

        assert self.plugin in provider_plugins(), f"entry point for '{self.plugin}' not found"

    def make_provider(self) -> Any:
        """The plugin's provider, configured as `config` configures it, built directly."""
        from router.plugins import provider_plugins
        from router.upstream.provider import ProviderConfig

        cls = provider_plugins()[self.plugin].provider_class
        return cls(
            ProviderConfig(
                name="p",
                base_url="http://127.0.0.1:9" + self.base_path,
                api_key=self.api_key,
                settings=cls.settings_model.model_validate(self.settings),
            )
        )

    def test_conformance_translation_is_pure(self) -> None:
        """build_request makes an httpx.Request without any I/O, carrying the credential."""
        request = self.make_provider().build_request(
            Operation.CHAT, {"model": "m", "messages": MESSAGES}, self.upstream_model
        )
        assert isinstance(request, httpx.Request)
        assert request.url.path == self.chat_path
        assert orjson.loads(request.content)["messages"] == MESSAGES
        if self.api_key is not None:
            assert any(self.api_key in v for v in request.headers.values())

    def test_conformance_declared_pass_through_holds(self) -> None:
        """A provider declaring `answers_pass_through` gets the upstream's bytes sent on as
        they came, so its `transform_response` must return the answer unchanged."""
        from router.upstream.provider import UpstreamResponse

        provider = self.make_provider()
        if not provider.answers_pass_through:
            pytest.skip("answers are translated: answers_pass_through is not declared")
        reply = self.chat_reply("Hello from upstream")
        answer = UpstreamResponse(reply.status, reply.headers, reply.body)
        assert provider.transform_response(Operation.CHAT, answer) == orjson.loads(reply.body)

    def test_conformance_answer(self, conformance: Any) -> None:
        upstream, _, client = conformance
        upstream.add(self.chat_path, self.chat_reply("Hello from upstream"))
        raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        reply = raw.parse()
        assert reply.choices[0].message.content == "Hello from upstream"
        assert reply.choices[0].finish_reason is not None
        (received,) = upstream.received(self.chat_path)
        self.assert_credentials(received)
        assert_chat_completion(raw.http_response.json())

    def test_conformance_stream(self, conformance: Any) -> None:
        upstream, _, client = conformance
        upstream.add(self.chat_path, self.stream_reply(["Hel", "lo", "!"]))
        chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Hello!"
        assert any(c.choices and c.choices[0].finish_reason for c in chunks)

    def test_conformance_stream_usage_when_asked(self, conformance: Any) -> None:
        upstream, _, client = conformance
        upstream.add(self.chat_path, self.stream_reply(["Hel", "lo"]))
        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
        assert chunks[-1].choices == []

    def test_conformance_errors(self, conformance: Any) -> None:
        upstream, _, client = conformance
        cases = self.error_cases()
        for case in cases:
            for stream in (False, True):
                upstream.add(self.chat_path, case.reply)
                with pytest.raises(case.exception) as info:
                    result = client.chat.completions.create(
                        model="m", messages=MESSAGES, stream=stream
                    )
                    list(result) if stream else None
                error = info.value
                assert getattr(error, "status_code", None) == case.status, (case.name, stream)
                body = getattr(error, "body", None)
                assert isinstance(body, dict) and {"message", "type", "param", "code"} <= set(
                    body
                ), (case.name, body)
                if case.code is not None:
                    assert body["code"] == case.code, (case.name, body)
        assert len(upstream.requests) == 2 * len(cases)  # attempts: 0 means one each

    def test_conformance_midstream_error(self, conformance: Any) -> None:
        import openai

        upstream, _, client = conformance
        reply = self.midstream_error_reply(["Hel", "lo"])
        if reply is None:
            pytest.skip("this upstream has no mid-stream error frames")
        reply.delay = reply.delay or 0.05  # so that the answer's start reaches the client first
        upstream.add(self.chat_path, reply)
        received = []
        with pytest.raises(openai.APIError):
            for chunk in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
                received.append(chunk)
        assert "".join(c.choices[0].delta.content or "" for c in received if c.choices)

    def test_conformance_client_disconnect_cancels_upstream(self, conformance: Any) -> None:
        upstream, server, _ = conformance
        reply = self.stream_reply([f"w{i} " for i in range(40)])
        reply.delay = 0.05
        upstream.add(self.chat_path, reply)
        body = {"model": "m", "messages": MESSAGES, "stream": True}
        with httpx.stream(
            "POST", server.base_url + "/chat/completions", content=orjson.dumps(body)
        ) as response:
            next(response.iter_bytes())
        deadline = time.monotonic() + 3
        while not upstream.disconnects and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstream.disconnects == [self.chat_path]
