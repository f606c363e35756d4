"""`plugin: telkom`: Telkom AI LLM on the Apilogy marketplace, behind a Kong gateway.

The model server speaks OpenAI chat completions; what differs is the gateway around it:
`x-api-key` auth, a chat path the docs and real clients disagree on, Kong's own
`{"message": ...}` errors and its `RateLimit-*` / `X-RateLimit-*-Minute` headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from llm_router_telkom import kong
from router.spec import (
    Operation,
    Provider,
    ProviderConfig,
    ProviderConfigError,
    ProviderSettings,
    RateLimitInfo,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamResponse,
    classify_error,
    error_class,
    extract_error,
    hookimpl,
    upstream_error,
)

__all__ = ["TelkomProvider", "TelkomSettings", "register_providers"]

DEFAULT_BASE_URL = "https://telkom-ai-dag.api.apilogy.id/Telkom-LLM/0.0.4"
#: What every client seen in the wild calls (the `/llm` segment is not in the docs).
OBSERVED_CHAT_PATH = "/llm/chat/completions"
#: What the Apilogy documentation says.
DOCUMENTED_CHAT_PATH = "/chat/completions"


class TelkomSettings(ProviderSettings):
    """`providers.<name>.settings` for `plugin: telkom`."""

    chat_path: str = Field(
        OBSERVED_CHAT_PATH,
        description="Path of the chat endpoint under `base_url`. `/llm/chat/completions` is "
        "what every known client calls; `/chat/completions` is what the Apilogy docs say. "
        "A wrong path gets Kong's 404 `no Route matched with those values`.",
    )

    @field_validator("chat_path")
    @classmethod
    def _plain_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(
                f"must be a path starting with '/', such as {OBSERVED_CHAT_PATH} "
                f"or {DOCUMENTED_CHAT_PATH}"
            )
        segments = value[1:].split("/")
        if any(not s for s in segments) or any(ch in value for ch in "?#% \t\r\n"):
            raise ValueError(
                "must be a plain path: non-empty segments, no trailing '/', no query or spaces"
            )
        return value


class TelkomProvider(Provider):
    """Chat completions through the Apilogy gateway; see the package README for the quirks."""

    settings_model: ClassVar[type[ProviderSettings]] = TelkomSettings
    operations: ClassVar[frozenset[Operation]] = frozenset({Operation.CHAT})
    stream_usage: ClassVar[bool] = False  # never seen in a Telkom stream: the core estimates
    #: The model server answers in plain OpenAI: its bytes go to the client as they came.
    answers_pass_through: ClassVar[bool] = True
    #: Streams ask for `accept: application/json` too, as the vendor's own (OpenAI SDK)
    #: example does: nothing says the gateway honours `text/event-stream`.
    stream_accept: ClassVar[str | None] = None
    paths: ClassVar[Mapping[Operation, str]] = {Operation.CHAT: OBSERVED_CHAT_PATH}
    models_path: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = DEFAULT_BASE_URL

    def __init__(self, config: ProviderConfig) -> None:
        if not config.api_key:
            raise ProviderConfigError(
                "required: the Apilogy gateway refuses requests without an x-api-key; "
                "set it from the environment, e.g. ${TELKOM_API_KEY}",
                key="api_key",
            )
        if any(name.lower() == "x-api-key" for name in config.headers):
            raise ProviderConfigError(
                "x-api-key must not be set here: give the key as `api_key`, which is kept "
                "secret and is the only credential sent",
                key="headers",
            )
        super().__init__(config)
        settings = config.settings
        if not isinstance(settings, TelkomSettings):
            settings = TelkomSettings()
        chat_path = settings.chat_path
        if self.base_url.endswith("/chat/completions"):
            raise ProviderConfigError(
                f"'{self.base_url}' already ends with the chat path; give the host and base "
                f"path only, e.g. {DEFAULT_BASE_URL}, and pick the path with settings.chat_path",
                key="base_url",
            )
        if self.base_url.endswith("/llm") and chat_path.startswith("/llm/"):
            raise ProviderConfigError(
                f"ends with /llm and settings.chat_path ({chat_path}) starts with it too, so "
                f"requests would go to {self.base_url}{chat_path}; drop /llm from base_url "
                f"(e.g. {DEFAULT_BASE_URL})",
                key="base_url",
            )
        self.chat_path = chat_path
        self.urls = {Operation.CHAT: self.base_url + chat_path}
        where = f"providers.{self.name}"
        # The path only: clients of the router need not learn the upstream's host.
        url_path = urlsplit(self.urls[Operation.CHAT]).path
        self._kong_hints = {
            kong.NO_API_KEY: f"the gateway saw no x-api-key; check {where}.api_key",
            kong.INVALID_CREDENTIALS: f"the gateway does not know this key; check {where}.api_key",
            kong.DUPLICATE_API_KEY: "the gateway saw the API key twice; a proxy between the "
            "router and Apilogy may be adding its own",
            kong.NO_ROUTE: f"the gateway has no route for {url_path}; check "
            f"{where}.settings.chat_path ({OBSERVED_CHAT_PATH} or {DOCUMENTED_CHAT_PATH}) and "
            f"{where}.base_url (host plus /Telkom-LLM/<version>)",
        }

    # -- requests -------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """Kong key-auth reads `x-api-key`; an Authorization header is ignored, so none."""
        return {"x-api-key": self.config.api_key} if self.config.api_key else {}

    def transform_request(self, op: Operation, body: dict[str, Any], model: str) -> dict[str, Any]:
        """The client's body with our model. `max_completion_tokens` (newer OpenAI SDKs)
        becomes `max_tokens`, the field every Telkom client uses, so the cap always holds.
        """
        body["model"] = model
        if "max_completion_tokens" in body:
            cap = body.pop("max_completion_tokens")
            body.setdefault("max_tokens", cap)
        return body

    # -- errors and limits ------------------------------------------------------------------

    def get_error(self, response: UpstreamResponse) -> UpstreamError:
        """Kong's own refusals get a specific class and a hint at the config key to fix;
        the model server's errors (OpenAI `{"error": ...}` or FastAPI `{"detail": ...}`)
        are classified from their status and message.
        """
        info = self.get_rate_limit_info(response.headers)
        retry_after = info.wait_hint() if info else None
        status = response.status
        message = kong.kong_message(response.content)
        if message is None:
            message, code, error_type, param = extract_error(response.content)
            return classify_error(
                status,
                message,
                code=code,
                error_type=error_type,
                param=param,
                retry_after=retry_after,
                provider=self.name,
            )
        hint = self._kong_hints.get(message)
        code = None
        cls: type[UpstreamError]
        if message in kong.AUTH_MESSAGES and status in (401, 403):
            cls = UpstreamAuthError  # Kong 0.x refused unknown keys with a 403
        elif message == kong.NO_ROUTE and status == 404:
            cls, code = UpstreamNotFound, "upstream_route_not_found"  # not a missing model
        else:
            cls = error_class(status, message)
        return upstream_error(
            cls,
            status,
            f"{message} ({hint})" if hint else message,
            provider=self.name,
            retry_after=retry_after,
            code=code,
        )

    def get_rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        return kong.parse_kong_rate_limit(headers)


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("telkom", TelkomProvider)
