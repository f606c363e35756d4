"""A provider plugin with a bug on purpose, for tests of how the router contains it.

It speaks plain OpenAI, and raises a plain Python exception (not a router error) in the
provider method named by `settings.fail_in`: always for `transform_request`,
`transform_response`, `get_error`, `get_rate_limit_info` and `continuation_body`, and for
`transform_stream_event` on an event whose text contains `boom`. The exception's text
quotes the provider's API key, as a careless plugin's might.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from router.spec import (
    Operation,
    Provider,
    ProviderSettings,
    RateLimitInfo,
    UpstreamError,
    UpstreamResponse,
    hookimpl,
)


class BuggySettings(ProviderSettings):
    fail_in: Literal[
        "transform_request",
        "transform_response",
        "transform_stream_event",
        "get_error",
        "get_rate_limit_info",
        "continuation_body",
    ]


class BuggyProvider(Provider):
    settings_model = BuggySettings
    supports_continuation = True

    def _bug(self, stage: str) -> None:
        if self.settings.fail_in == stage:  # type: ignore[attr-defined]
            raise KeyError(f"no such field (key {self.config.api_key})")

    def transform_request(self, op: Operation, body: dict[str, Any], model: str) -> dict[str, Any]:
        self._bug("transform_request")
        return super().transform_request(op, body, model)

    def transform_response(self, op: Operation, response: UpstreamResponse) -> dict[str, Any]:
        self._bug("transform_response")
        return super().transform_response(op, response)

    def transform_stream_event(
        self, op: Operation, data: bytes, event: str | None = None
    ) -> dict[str, Any] | None:
        if b"boom" in data:
            self._bug("transform_stream_event")
        return super().transform_stream_event(op, data, event)

    def get_error(self, response: UpstreamResponse) -> UpstreamError:
        self._bug("get_error")
        return super().get_error(response)

    def get_rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        self._bug("get_rate_limit_info")
        return super().get_rate_limit_info(headers)

    def continuation_body(self, body: dict[str, Any], partial: str) -> dict[str, Any]:
        self._bug("continuation_body")
        return super().continuation_body(body, partial)


@hookimpl
def register_providers(register: Any) -> None:
    register("buggy", BuggyProvider)
