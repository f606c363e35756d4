"""One event of an OpenAI-shaped upstream stream, read: decoded, checked, error frames raised.

The base `Provider.transform_stream_event` is `parse_stream_event` itself, with OpenAI's test
for an error frame; a plugin whose upstream signals errors in other shapes passes its own test
(`is_error=`) and keeps everything else. (`is_error` is not keyword-only because CPython calls
a function with keyword-only parameters on a slower path, and this runs for every event.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from router import errors
from router.types import Operation

if TYPE_CHECKING:
    from router.upstream.provider import Provider

ErrorFrameTest = Callable[[Mapping[str, Any]], bool]


def is_error_frame(chunk: Mapping[str, Any]) -> bool:
    """OpenAI's mid-stream error frame: `{"error": {...}}` (or any non-empty `error`)."""
    return bool(chunk.get("error"))


def parse_stream_event(
    provider: Provider,
    op: Operation,
    data: bytes,
    event: str | None = None,
    is_error: ErrorFrameTest | None = None,
) -> dict[str, Any]:
    """One SSE `data:` payload (never `[DONE]`) as an OpenAI chunk.

    Raises `MalformedResponse` for a payload that is not a JSON object, and
    `provider.get_stream_error(chunk)` for an error frame: an SSE event named `error`, or a
    chunk `is_error` accepts (`is_error_frame` when None). Fills in the keys OpenAI chunks
    always carry: each choice's `finish_reason`, and its `delta` in chat streams.
    """
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.MalformedResponse(
            f"upstream '{provider.name}' sent a stream event that is not JSON",
            provider=provider.name,
        ) from exc
    if not isinstance(chunk, dict):
        raise errors.MalformedResponse(
            f"upstream '{provider.name}' sent a stream event that is not an object",
            provider=provider.name,
        )
    # (The default test inline, not a call: this runs for every event of every stream.)
    if event == "error" or (chunk.get("error") if is_error is None else is_error(chunk)):
        raise provider.get_stream_error(chunk)
    choices = chunk.get("choices")
    if choices:
        if type(choices) is not list:
            raise _not_a_chunk(provider, "its `choices` are not a list")
        for choice in choices:
            if type(choice) is not dict:
                raise _not_a_chunk(provider, "a choice is not an object")
            if "finish_reason" not in choice:
                choice["finish_reason"] = None
            if op is Operation.CHAT and "delta" not in choice:
                choice["delta"] = {}
    return chunk


def _not_a_chunk(provider: Provider, why: str) -> errors.MalformedResponse:
    return errors.MalformedResponse(
        f"upstream '{provider.name}' sent a stream event that is no chunk: {why}",
        provider=provider.name,
    )
