"""llm-router provider for the Example upstream: OpenAI-compatible, with its own auth header
and its own error format. Override only what differs from plain OpenAI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from router.spec import (
    Operation,
    Provider,
    ProviderSettings,
    UpstreamError,
    UpstreamResponse,
    classify_error,
    extract_error,
    hookimpl,
)


class ExampleSettings(ProviderSettings):
    """`providers.<name>.settings` for this plugin; unknown keys are rejected at load."""

    region: str = Field("eu", description="Sent as the `x-example-region` header.")


class ExampleProvider(Provider):
    settings_model = ExampleSettings
    settings: ExampleSettings
    operations = frozenset({Operation.CHAT, Operation.EMBEDDINGS})

    def auth_headers(self) -> dict[str, str]:
        key = self.config.api_key
        headers = {"x-example-region": self.settings.region}
        if key:
            headers["x-example-key"] = key
        return headers

    def transform_request(self, op: Operation, body: dict[str, Any], model: str) -> dict[str, Any]:
        body = super().transform_request(op, body, model)
        body.pop("user", None)  # the Example upstream rejects it
        return body

    def get_error(self, response: UpstreamResponse) -> UpstreamError:
        # Example errors look like {"message": "...", "retry_in": 3}.
        message, code, error_type, param = extract_error(response.content)
        info = self.get_rate_limit_info(response.headers)
        return classify_error(
            response.status,
            message,
            code=code,
            error_type=error_type,
            param=param,
            retry_after=info.wait_hint() if info else None,
            provider=self.name,
        )


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("example", ExampleProvider)
