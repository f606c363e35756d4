"""`plugin: litellm`: any LiteLLM proxy (self-hosted, or hosted such as KoboiLLM).

The proxy speaks OpenAI with quirks: a configurable credential header, request fields it
consumes itself, answers that bend the OpenAI schema, its own error `type`s and message
prefixes, and mid-stream failures sent as `data: {"error": ...}` frames. Everything else is
the core's plain OpenAI behaviour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, field_validator

from llm_router_litellm import normalize
from llm_router_litellm.errors import error_fields, litellm_error
from llm_router_litellm.ratelimits import rate_limit_info
from router.spec import (
    Operation,
    Provider,
    ProviderConfig,
    ProviderConfigError,
    ProviderSettings,
    RateLimitInfo,
    UpstreamError,
    UpstreamResponse,
    hookimpl,
)

__all__ = ["ALWAYS_STRIPPED", "LiteLLMProvider", "LiteLLMSettings", "register_providers"]

#: Never forwarded: they let a client fake the answer (`mock_*`) or point the proxy at
#: another endpoint or credential than the one the router was configured with.
ALWAYS_STRIPPED = frozenset({"api_key", "api_base", "base_url", "user_config"})
_MOCK_PREFIX = "mock_"
#: Fields the request itself depends on; stripping them would break every call.
_ESSENTIAL = frozenset(
    {"model", "messages", "prompt", "input", "stream", "stream_options", "file", "query",
     "documents"}
)  # fmt: skip


class LiteLLMSettings(ProviderSettings):
    """`providers.<name>.settings` for `plugin: litellm`."""

    auth_header: Literal["authorization", "x-litellm-api-key"] = Field(
        "authorization",
        description="Header carrying `api_key`: `authorization` sends `Bearer <key>`, "
        "`x-litellm-api-key` sends the raw key (for proxies behind a gateway that uses "
        "`Authorization` itself).",
    )
    strip_fields: tuple[str, ...] = Field(
        ("fallbacks", "context_window_fallbacks", "num_retries"),
        description="Client request fields removed before forwarding. By default LiteLLM's "
        "own retry and fallback controls, because the router does retries and fallbacks; add "
        "`metadata` or `tags` to keep clients from setting LiteLLM spend-tracking labels. "
        "`mock_*`, `api_key`, `api_base`, `base_url` and `user_config` are always removed.",
    )

    @field_validator("strip_fields")
    @classmethod
    def _strippable(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name.strip():
                raise ValueError("field names must not be empty")
            if name in _ESSENTIAL:
                raise ValueError(f"'{name}' is needed by every request and cannot be stripped")
        return value


class LiteLLMProvider(Provider):
    """A LiteLLM proxy; `base_url` is its OpenAI root, e.g. `http://litellm:4000/v1`."""

    settings_model: ClassVar[type[ProviderSettings]] = LiteLLMSettings
    #: Everything KoboiLLM documents: chat, completions, embeddings, images, speech,
    #: transcriptions and moderations, and the proxy's Cohere-shaped `/rerank`.
    operations = frozenset(
        {
            Operation.CHAT,
            Operation.COMPLETIONS,
            Operation.EMBEDDINGS,
            Operation.IMAGES,
            Operation.SPEECH,
            Operation.TRANSCRIPTIONS,
            Operation.MODERATIONS,
            Operation.RERANK,
        }
    )
    default_base_url: ClassVar[str | None] = None
    settings: LiteLLMSettings

    def __init__(self, config: ProviderConfig) -> None:
        if not isinstance(config.settings, LiteLLMSettings):  # built by hand, not from YAML
            config = dataclasses.replace(
                config, settings=LiteLLMSettings.model_validate(config.settings.model_dump())
            )
        settings = config.settings
        assert isinstance(settings, LiteLLMSettings)
        if settings.auth_header == "x-litellm-api-key" and not config.api_key:
            raise ProviderConfigError(
                "auth_header 'x-litellm-api-key' needs an api_key to send", key="api_key"
            )
        path = config.base_url.rstrip("/")
        for endpoint in ("/chat/completions", "/completions", "/embeddings", "/models"):
            if path.endswith(endpoint):
                raise ProviderConfigError(
                    f"give the proxy's base URL (e.g. http://host:4000/v1), not the "
                    f"'{endpoint}' endpoint",
                    key="base_url",
                )
        super().__init__(config)
        self._strip = ALWAYS_STRIPPED | frozenset(settings.strip_fields)

    def auth_headers(self) -> dict[str, str]:
        key = self.config.api_key
        if not key:
            return {}
        if self.settings.auth_header == "x-litellm-api-key":
            return {"x-litellm-api-key": key}
        return {"authorization": f"Bearer {key}"}

    def transform_request(self, op: Operation, body: dict[str, Any], model: str) -> dict[str, Any]:
        """The client's body with `model` set (sent verbatim: `openai/gpt-4o-mini` stays so)."""
        for name in [k for k in body if k in self._strip or k.startswith(_MOCK_PREFIX)]:
            del body[name]
        body["model"] = model
        return body

    def transform_response(self, op: Operation, response: UpstreamResponse) -> dict[str, Any]:
        data = super().transform_response(op, response)
        return normalize.chat_response(data) if op is Operation.CHAT else data

    def transform_stream_event(
        self, op: Operation, data: bytes, event: str | None = None
    ) -> dict[str, Any] | None:
        chunk = super().transform_stream_event(op, data, event)
        return None if chunk is None else normalize.chunk(chunk)

    def get_error(self, response: UpstreamResponse) -> UpstreamError:
        try:
            payload: Any = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            payload = response.content.decode("utf-8", "replace").strip()[:500]
        info = self.get_rate_limit_info(response.headers)
        return litellm_error(
            response.status,
            payload,
            retry_after=info.wait_hint() if info else None,
            provider=self.name,
        )

    def get_stream_error(self, payload: dict[str, Any]) -> UpstreamError:
        """A `data: {"error": {..., "code": "500"}}` frame: the code is the proxy's status."""
        message, code, _, _ = error_fields(payload)
        status = int(code) if code and code.isdigit() and 400 <= int(code) < 600 else 500
        if not message:
            payload = {"error": {"message": "upstream failed mid-stream"}}
        return litellm_error(status, payload, provider=self.name)

    def get_rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        return rate_limit_info(headers)


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("litellm", LiteLLMProvider)
