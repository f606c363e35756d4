"""What the schema translators share: the target's optional features, fresh ids, SSE frames
with an event name, and readers for request fields that fail with a 400 naming the field."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from router.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class TargetFeatures:
    """Chat-completions extras a target takes; decided once per target at config-load time.

    `reasoning_effort`: send chat's `reasoning_effort` (from Responses `reasoning.effort`, or
    Anthropic `output_config.effort` / `thinking`); without it the effort is left out, since
    many chat targets reject the field. `top_k`: pass Anthropic's `top_k` on as a `top_k`
    extra (vLLM, SGLang and LiteLLM take it); without it `top_k` is dropped.
    """

    reasoning_effort: bool = False
    top_k: bool = False


PLAIN = TargetFeatures()


def new_id(prefix: str) -> str:
    """A fresh object id in the API's own style (`resp_…`, `msg_…`, `fc_…`, `toolu_…`)."""
    return prefix + os.urandom(12).hex()


def frame(payload: dict[str, Any]) -> bytes:
    """One SSE event named after its `type`, as both OpenAI and Anthropic send them."""
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


HOLE = "\x00"  # a value `template` leaves out (JSON text never holds it unescaped)
_HOLE_JSON = b'"\\u0000"'


def template(event: dict[str, Any]) -> list[bytes]:
    """`frame(event)` cut where its values are `HOLE`: join the values in between.

    A stream's delta events differ only in their text (and sequence number), so each open
    part encodes its event once and each chunk encodes only its own text."""
    return frame(event).split(_HOLE_JSON)


def invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' is not supported: {why}", param=param)


def as_dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"'{param}' must be an object", param)
    return value


def as_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(f"'{param}' must be an array", param)
    return value


def as_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"'{param}' must be a string", param)
    return value


def required_str(body: dict[str, Any], name: str, prefix: str = "") -> str:
    value = body.get(name)
    param = prefix + name
    if value is None:
        raise invalid(f"missing required parameter: '{param}'", param)
    if not isinstance(value, str) or not value:
        raise invalid(f"'{param}' must be a non-empty string", param)
    return value


def copy_numbers(body: dict[str, Any], chat: dict[str, Any], *names: str) -> None:
    """Copy the numbers `names` that are set, checking that each is one."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(f"'{name}' must be a number", name)
        chat[name] = value


def one_text(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Chat content: a lone text part as a plain string, which every chat target takes."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts


def stream_fields(chat: dict[str, Any], stream: Any) -> None:
    """`stream`, and usage in the stream: both APIs report usage when the stream ends."""
    if stream is None or stream is False:
        return
    if stream is not True:
        raise invalid("'stream' must be a boolean", "stream")
    chat["stream"] = True
    chat["stream_options"] = {"include_usage": True}
