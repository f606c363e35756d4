"""llm-switchyard provider for the Example upstream: OpenAI-compatible, with its own auth header,
a region header and its own error format. Declare and override only what differs from plain
OpenAI (docs/writing-a-plugin.md lists every member of `Provider`). Import only `router.spec`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import Field

from router.spec import (
    Operation,
    Provider,
    ProviderSettings,
    UpstreamError,
    UpstreamResponse,
    hookimpl,
)


class ExampleSettings(ProviderSettings):
    """`providers.<name>.settings` for this plugin; unknown keys are rejected at load."""

    region: str = Field("eu", description="Sent as the `x-example-region` header.")


class ExampleProvider(Provider):
    settings_model = ExampleSettings
    settings: ExampleSettings
    operations = frozenset({Operation.CHAT, Operation.EMBEDDINGS})
    # Answers are plain OpenAI, so the router may send the upstream's bytes on as they came.
    # Remove this line if you override `transform_response` to change answers.
    answers_pass_through = True

    def auth_headers(self) -> dict[str, str]:
        """The credential, and nothing else: these headers are masked and locked."""
        key = self.config.api_key
        return {"x-example-key": key} if key else {}

    def extra_headers(self) -> dict[str, str]:
        """Headers that are not secret: header rules may rewrite them, `explain` shows them."""
        return {"x-example-region": self.settings.region}

    def transform_request(self, op: Operation, body: dict[str, Any], model: str) -> dict[str, Any]:
        body = super().transform_request(op, body, model)
        body.pop("user", None)  # the Example upstream rejects it
        return body

    def get_error(self, response: UpstreamResponse) -> UpstreamError:
        # The base class reads the message and the usual headers; Example errors may also
        # say when to come back in the body: {"message": "slow down", "retry_in": 3}.
        error = super().get_error(response)
        try:
            retry_in = json.loads(response.content).get("retry_in")
        except (ValueError, AttributeError):
            retry_in = None
        if error.retry_after is None and isinstance(retry_in, int | float):
            error.retry_after = float(retry_in)
        return error


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("example", ExampleProvider)
