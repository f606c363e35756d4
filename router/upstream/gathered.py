"""A stream an upstream sent to a request that did not ask for one, as the one JSON answer
the client asked for.

Some servers stream whatever they are asked (a model served only streaming, a proxy set to
stream). The client asked for a chat completion or a completion, so the router gathers the
chunks into it: per choice, the text (and reasoning, refusal) joined, tool calls put together
by their index, the last finish reason; the usage of the chunk that carries it. The mirror of
`router.upstream.whole`. Pure: the answer's dict from the chunks' dicts, no I/O.
"""

from __future__ import annotations

from typing import Any

from router.types import Operation
from router.upstream.normalize import answer_text

_JOINED = ("content", "reasoning_content", "refusal")  # message fields sent in pieces


def is_event_stream(content_type: str | None) -> bool:
    """Whether a `content-type` says server-sent events."""
    return content_type is not None and "text/event-stream" in content_type.lower()


def gather(op: Operation, chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer `chunks` (OpenAI chunks of a chat completion or completion) make up."""
    chat = op is Operation.CHAT
    first = chunks[0] if chunks else {}
    answer: dict[str, Any] = {
        "id": first.get("id"),
        "object": "chat.completion" if chat else "text_completion",
        "created": first.get("created"),
        "model": first.get("model"),
    }
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            answer["usage"] = usage
        for part in chunk.get("choices") or ():
            if not isinstance(part, dict):
                continue
            index = part.get("index", 0)
            if type(index) is not int:  # (an upstream's nonsense: not a key to sort by)
                index = 0
            choice = choices.get(index)
            if choice is None:
                choice = choices[index] = _choice(chat, index)
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]
            if chat:
                _add_delta(choice["message"], part.get("delta"))
            elif isinstance(part.get("text"), str):
                choice["text"] += part["text"]
    answer["choices"] = [choices[index] for index in sorted(choices)]
    for choice in answer["choices"]:
        message = choice.get("message")
        if message is not None and "tool_calls" in message:
            message["tool_calls"] = [
                message["tool_calls"][i] for i in sorted(message["tool_calls"])
            ]
    return answer


def _choice(chat: bool, index: int) -> dict[str, Any]:
    if chat:
        message = {"role": "assistant", "content": None, "refusal": None}
        return {"index": index, "message": message, "logprobs": None, "finish_reason": None}
    return {"index": index, "text": "", "logprobs": None, "finish_reason": None}


def _add_delta(message: dict[str, Any], delta: Any) -> None:
    """One chunk's delta into the message gathered so far."""
    if not isinstance(delta, dict):
        return
    for name, value in delta.items():
        if value is None:
            continue
        if name == "content" and type(value) is list:  # parts, as some servers send them
            value = answer_text(value)
        if name in _JOINED and isinstance(value, str):
            message[name] = (message.get(name) or "") + value
        elif name == "tool_calls" and isinstance(value, list):
            calls = message.setdefault("tool_calls", {})
            for position, call in enumerate(value):
                if isinstance(call, dict):
                    index = call.get("index", position)
                    _add_call(calls, index if type(index) is int else position, call)
        elif name != "role" or value:
            message[name] = value


def _add_call(calls: dict[int, dict[str, Any]], index: int, piece: dict[str, Any]) -> None:
    """A tool call's piece (its id, type and name first, its arguments in pieces after)."""
    call = calls.setdefault(
        index, {"id": None, "type": "function", "function": {"name": None, "arguments": ""}}
    )
    for name in ("id", "type"):
        if piece.get(name):
            call[name] = piece[name]
    function = piece.get("function")
    if isinstance(function, dict):
        gathered = call["function"]
        if function.get("name") and not gathered["name"]:  # (some servers repeat it)
            gathered["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            gathered["arguments"] += function["arguments"]
