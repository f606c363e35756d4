"""`plugin: telnyx`: Telnyx Inference (`https://api.telnyx.com/v2/ai`) behind llm-switchyard.

Telnyx speaks OpenAI with a few differences, and this provider overrides only those: its
paths live under `/openai/` (the older `/chat/completions` is deprecated but served), it
never sees `stream_options`, client credentials for proxied models are dropped unless
allowed, OpenAI-only request shapes are mapped to Telnyx's, models carry rich metadata with
an ISO `created`, and errors come in Telnyx's own three formats (see `errors.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from llm_router_telnyx import errors, translate
from router.spec import (
    Operation,
    Provider,
    ProviderConfig,
    ProviderConfigError,
    ProviderSettings,
    UpstreamError,
    UpstreamResponse,
    hookimpl,
    parse_stream_event,
)

__all__ = ["TelnyxProvider", "TelnyxSettings", "register_providers"]

CURRENT_CHAT_PATH = "/openai/chat/completions"
DEPRECATED_CHAT_PATH = "/chat/completions"


class TelnyxSettings(ProviderSettings):
    """`providers.<name>.settings` for `plugin: telnyx`."""

    chat_path: Literal["/openai/chat/completions", "/chat/completions"] = Field(
        CURRENT_CHAT_PATH,
        description="Chat endpoint under the base URL: `/openai/chat/completions` (current) or "
        "`/chat/completions` (the documented path, deprecated by Telnyx but still served).",
    )
    allow_client_api_keys: bool = Field(
        False,
        description="Pass a client's `openai_api_key` / `api_key_ref` (credentials for models "
        "Telnyx proxies) on to Telnyx. Off by default: such fields are dropped.",
    )


class TelnyxProvider(Provider):
    """Telnyx Inference: OpenAI-compatible chat and embeddings, no legacy completions."""

    settings_model = TelnyxSettings
    settings: TelnyxSettings
    operations = frozenset({Operation.CHAT, Operation.EMBEDDINGS})
    stream_usage = False  # `stream_options` is not in Telnyx's schema
    paths: ClassVar[Mapping[Operation, str]] = {
        Operation.CHAT: CURRENT_CHAT_PATH,
        Operation.EMBEDDINGS: "/openai/embeddings",
    }
    models_path = "/openai/models"
    default_base_url = "https://api.telnyx.com/v2/ai"
    answers_pass_through = True  # answers are plain OpenAI (vLLM's), sent on as they came

    def __init__(self, config: ProviderConfig) -> None:
        base = config.base_url.rstrip("/")
        if base.endswith("/openai"):
            raise ProviderConfigError(
                f"ends with '/openai' (the OpenAI SDK's base URL for Telnyx); give the API root "
                f"instead, e.g. '{base.removesuffix('/openai')}': the plugin adds the "
                "'/openai/...' paths itself",
                key="base_url",
            )
        has_auth_header = any(k.lower() == "authorization" for k in config.headers)
        if not config.api_key and not has_auth_header:
            raise ProviderConfigError(
                "required: Telnyx needs an API key, e.g. api_key: ${TELNYX_API_KEY}",
                key="api_key",
            )
        super().__init__(config)
        self.urls[Operation.CHAT] = self.base_url + self.settings.chat_path
        self._allow_client_keys = self.settings.allow_client_api_keys

    # -- requests -------------------------------------------------------------------------

    def transform_request(self, op: Operation, body: dict[str, Any], model: str) -> dict[str, Any]:
        body["model"] = model
        if not self._allow_client_keys:
            translate.drop_client_keys(body)
        if op is not Operation.CHAT:
            return body
        body.pop("stream_options", None)
        translate.max_tokens(body)
        translate.response_format(body)
        if "messages" in body:
            body["messages"] = translate.image_parts(body["messages"])
        return body

    # -- responses ------------------------------------------------------------------------

    def transform_stream_event(
        self, op: Operation, data: bytes, event: str | None = None
    ) -> dict[str, Any] | None:
        """The core's reading, with Telnyx's error frames (`errors`, vLLM's flat `object:
        error`) recognised too; streamed tool calls get the `index` OpenAI requires."""
        chunk = parse_stream_event(self, op, data, event, is_error=errors.is_error_frame)
        if op is Operation.CHAT:
            translate.tool_call_indexes(chunk)
        return chunk

    def transform_models(self, response: UpstreamResponse) -> list[dict[str, Any]]:
        return [translate.model_object(item) for item in super().transform_models(response)]

    # -- errors ---------------------------------------------------------------------------

    def get_error(self, response: UpstreamResponse) -> UpstreamError:
        info = self.get_rate_limit_info(response.headers)
        retry_after = info.wait_hint() if info else None
        if retry_after is None and response.status == 429 and info is not None:
            retry_after = info.reset_requests  # a 429 means exhausted, whatever `remaining` says
        return errors.error_from_response(
            response.status, response.content, retry_after=retry_after, provider=self.name
        )

    def get_stream_error(self, payload: dict[str, Any]) -> UpstreamError:
        return errors.error_from_frame(payload, provider=self.name)


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("telnyx", TelnyxProvider)
