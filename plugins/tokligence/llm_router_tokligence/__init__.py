"""`plugin: tokligence`: the Tokligence gateway, an OpenAI-compatible, self-hosted LLM gateway.

What differs from plain OpenAI, and is handled here:
- keys start with `tk-` (the docs) or `tok_` (the open-source gateway); checked at load;
- no legacy completions; embeddings, image generation and rerank only where the gateway
  enables them (its docs call them optional; the open-source gateway has neither images nor
  rerank, and answers them 404);
- streams never carry usage (the router estimates it) and omit tool-call `index` 0;
- errors come flat (`{"error": "..."}`), as the OpenAI envelope or as plain text, and every
  failure of the provider behind the gateway arrives as a 502 wrapping that provider's error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field

from llm_router_tokligence.error_map import map_error, map_stream_error
from router.spec import (
    Operation,
    Provider,
    ProviderConfig,
    ProviderConfigError,
    ProviderSettings,
    UpstreamError,
    UpstreamResponse,
    hookimpl,
)

__all__ = ["TokligenceProvider", "TokligenceSettings", "register_providers"]

KEY_PREFIXES = ("tk-", "tok_")


class TokligenceSettings(ProviderSettings):
    """`providers.<name>.settings` for `plugin: tokligence`."""

    auth_header: Literal["authorization", "x-api-key"] = Field(
        "authorization",
        description="How the key is sent: `authorization` (`Authorization: Bearer <key>`, the "
        "documented way) or `x-api-key` (`X-API-Key: <key>`, also accepted by the gateway).",
    )
    embeddings: bool = Field(
        True,
        description="Whether this gateway serves `/v1/embeddings` (an optional feature). With "
        "`false` the router never sends embeddings here; a gateway whose adapter cannot embed "
        "answers 501, which moves the request to the next target.",
    )
    images: bool = Field(
        True,
        description="Whether this gateway serves `/v1/images/generations` (optional, per its "
        "docs). With `false` the router never sends image requests here; a gateway without "
        "the endpoint answers 404, which moves the request to the next target.",
    )
    rerank: bool = Field(
        True,
        description="Whether this gateway serves `/v1/rerank` (optional, per its docs). With "
        "`false` the router never sends rerank requests here; a gateway without the endpoint "
        "answers 404, which moves the request to the next target.",
    )


def _check_key(key: str | None) -> None:
    """Catch a pasted wrong key at load time rather than as a 401 on the first request."""
    if key is not None and not key.startswith(KEY_PREFIXES):
        raise ProviderConfigError(
            "not a Tokligence key: keys start with `tk-` (hosted Tokligence) or `tok_` "
            "(the open-source gateway); leave it out if the gateway runs without auth",
            key="api_key",
        )


class TokligenceProvider(Provider):
    """The gateway's facade port, e.g. `http://localhost:8081/v1` (self-hosted: no default)."""

    settings_model = TokligenceSettings
    operations = frozenset(
        {Operation.CHAT, Operation.EMBEDDINGS, Operation.IMAGES, Operation.RERANK}
    )
    stream_usage = False  # the gateway drops `stream_options` and its chunks have no `usage`
    default_base_url = None

    def __init__(self, config: ProviderConfig) -> None:
        _check_key(config.api_key)
        settings = config.settings
        if isinstance(settings, TokligenceSettings):
            optional = {
                Operation.EMBEDDINGS: settings.embeddings,
                Operation.IMAGES: settings.images,
                Operation.RERANK: settings.rerank,
            }
            self.operations = frozenset(  # type: ignore[misc]
                {Operation.CHAT, *(op for op, served in optional.items() if served)}
            )
        super().__init__(config)

    def auth_headers(self) -> dict[str, str]:
        key = self.config.api_key
        if not key:
            return {}
        if getattr(self.settings, "auth_header", "authorization") == "x-api-key":
            return {"x-api-key": key}
        return {"authorization": f"Bearer {key}"}

    def transform_response(self, op: Operation, response: UpstreamResponse) -> dict[str, Any]:
        data = super().transform_response(op, response)
        usage = data.get("usage")
        if isinstance(usage, dict) and any(k in usage for k in _EXTRA_USAGE):
            data["usage"] = _openai_usage(usage)
        return data

    def transform_stream_event(
        self, op: Operation, data: bytes, event: str | None = None
    ) -> dict[str, Any] | None:
        chunk = super().transform_stream_event(op, data, event)
        for choice in (chunk or {}).get("choices") or ():
            delta = choice.get("delta")
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            if calls:  # Go's `omitempty` drops an index of 0
                delta["tool_calls"] = [
                    call if not isinstance(call, dict) or "index" in call else {**call, "index": 0}
                    for call in calls
                ]
        return chunk

    def get_error(self, response: UpstreamResponse) -> UpstreamError:
        limits = self.get_rate_limit_info(response.headers)
        return map_error(self.name, response.status, response.content, limits)

    def get_stream_error(self, payload: dict[str, Any]) -> UpstreamError:
        return map_stream_error(self.name, payload)


# Usage extras the gateway adds; OpenAI's usage object keeps the same numbers in `*_details`.
_EXTRA_USAGE = ("cache_read_tokens", "reasoning_tokens")


def _openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Copy the gateway's extras to where OpenAI clients look for them (the extras stay)."""
    out = dict(usage)
    if "cache_read_tokens" in usage:
        details = dict(out.get("prompt_tokens_details") or {})
        details.setdefault("cached_tokens", usage["cache_read_tokens"])
        out["prompt_tokens_details"] = details
    if "reasoning_tokens" in usage:
        details = dict(out.get("completion_tokens_details") or {})
        details.setdefault("reasoning_tokens", usage["reasoning_tokens"])
        out["completion_tokens_details"] = details
    return out


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("tokligence", TokligenceProvider)
