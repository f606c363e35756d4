"""An answer that came whole to a streaming request, as the stream it would have been.

Some OpenAI-compatible servers ignore `stream: true` for some models or settings and answer
with one JSON chat completion (or completion). The client asked for a stream and its SDK
reads one, so the router makes the stream from the answer: per choice, a chunk with the
whole message (its tool calls indexed as stream deltas are) and one with its finish reason,
then the usage chunk and `[DONE]`, as OpenAI's own streams end. The relay then treats them
as any upstream's chunks (usage, budgets, translation to the Messages and Responses APIs).
Pure: bytes of SSE out of the answer's dict, no I/O.
"""

from __future__ import annotations

from typing import Any

import orjson

from router.types import Operation


def is_json(content_type: str | None) -> bool:
    """Whether a `content-type` says JSON (`application/json`, `...+json`), not SSE."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def answer_as_stream(op: Operation, answer: dict[str, Any]) -> bytes:
    """The SSE frames of `answer` (a complete chat completion or completion), `[DONE]` last."""
    chat = op is Operation.CHAT
    head = {
        "id": answer.get("id"),
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": answer.get("created"),
        "model": answer.get("model"),
    }
    if "system_fingerprint" in answer:
        head["system_fingerprint"] = answer["system_fingerprint"]
    frames: list[dict[str, Any]] = []
    for position, choice in enumerate(answer.get("choices") or ()):
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", position)
        finish = choice.get("finish_reason") or "stop"
        if chat:
            delta = _delta(choice.get("message"))
            frames.append(_chunk(head, index, {"delta": delta}, choice.get("logprobs")))
            frames.append(_chunk(head, index, {"delta": {}, "finish_reason": finish}))
        else:
            text = choice.get("text") or ""
            frames.append(_chunk(head, index, {"text": text}, choice.get("logprobs")))
            frames.append(_chunk(head, index, {"text": "", "finish_reason": finish}))
    usage = answer.get("usage")
    if isinstance(usage, dict):
        frames.append({**head, "choices": [], "usage": usage})
    return b"".join(b"data: " + orjson.dumps(frame) + b"\n\n" for frame in frames) + (
        b"data: [DONE]\n\n"
    )


def _chunk(
    head: dict[str, Any], index: int, part: dict[str, Any], logprobs: Any = None
) -> dict[str, Any]:
    """One chunk of one choice: `part` is its delta or text (and its finish reason, if any)."""
    return {
        **head,
        "choices": [{"index": index, "logprobs": logprobs, "finish_reason": None, **part}],
    }


def _delta(message: Any) -> dict[str, Any]:
    """A whole message as one delta: its fields that are set, tool calls with their index."""
    if not isinstance(message, dict):
        return {"role": "assistant", "content": ""}
    delta = {name: value for name, value in message.items() if value is not None}
    delta.setdefault("role", "assistant")
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        delta["tool_calls"] = [
            {"index": i, **call} if isinstance(call, dict) else call for i, call in enumerate(calls)
        ]
    return delta
