"""Responses output items and their content parts: whole, for answers, and growing, for
streams (`OpenText` holds an item still being streamed; `call_snapshot` a call's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.translate.tool_calls import ToolCall

# content part type → (its stream delta event, its done event, the done event's text field)
PART_EVENTS = {
    "output_text": ("response.output_text.delta", "response.output_text.done", "text"),
    "refusal": ("response.refusal.delta", "response.refusal.done", "refusal"),
    "reasoning_text": ("response.reasoning_text.delta", "response.reasoning_text.done", "text"),
}


def content_part(kind: str, text: str) -> dict[str, Any]:
    """An `output_text`, `refusal` or `reasoning_text` part."""
    if kind == "output_text":
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    if kind == "refusal":
        return {"type": "refusal", "refusal": text}
    return {"type": "reasoning_text", "text": text}


def message_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def reasoning_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    """Reasoning as OpenAI gives it for open-weight models: text in `content`, no summary."""
    return {
        "id": item_id,
        "type": "reasoning",
        "status": status,
        "summary": [],
        "content": content,
    }


def call_item(item_id: str, status: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


@dataclass(slots=True)
class OpenText:
    """A `message` or `reasoning` item being streamed, and its open content part."""

    kind: str
    item_id: str
    index: int  # in the response's output
    parts: list[dict[str, Any]] = field(default_factory=list)  # the finished ones
    part: str | None = None
    pieces: list[str] = field(default_factory=list)
    delta_frame: list[bytes] = field(default_factory=list)  # the open part's, from `template`

    def snapshot(self, status: str) -> dict[str, Any]:
        parts = self.parts
        if self.part is not None:
            parts = [*parts, content_part(self.part, "".join(self.pieces))]
        if self.kind == "message":
            return message_item(self.item_id, status, parts)
        return reasoning_item(self.item_id, status, parts)


def call_snapshot(call: ToolCall, status: str) -> dict[str, Any]:
    """A `function_call` item being streamed, as it stands."""
    return call_item(call.item_id, status, call.call_id, call.name, "".join(call.pieces))
