"""Complete a provider's JSON answer so that it is what the OpenAI schema requires.

Upstreams that speak "OpenAI-compatible" leave out fields the schema marks required:
vLLM-style servers (Telkom, Telnyx) and Tokligence omit `message.refusal`, LiteLLM drops
`logprobs`, some omit `created` or `object`. Strict clients and validators reject such
answers, so the core fills them in, in one place, for every provider. Only what is missing
is added (as the schema's null or the obvious value); nothing present is changed.

`complete_answer` reports whether it added anything, so that an answer that was already
complete can go to the client as the upstream's own bytes, not re-encoded.
"""

from __future__ import annotations

import time
from typing import Any

from router.types import Operation

_COMPLETED = frozenset({Operation.CHAT, Operation.COMPLETIONS, Operation.EMBEDDINGS})
# What a complete answer, choice and chat message have: checked as one key-set comparison (in
# C), so an answer lacking nothing is not walked field by field.
_ANSWER_KEYS = frozenset({"object", "model", "id", "created"})
_CHOICE_KEYS = frozenset({"index", "finish_reason", "logprobs"})
_MESSAGE_KEYS = frozenset({"role", "content", "refusal"})
_NULL_CHOICE_FIELDS = ("finish_reason", "logprobs")
_MESSAGE_DEFAULTS: tuple[tuple[str, str | None], ...] = (
    ("role", "assistant"),
    ("content", None),
    ("refusal", None),
)

# The largest integer the router's JSON encoder (orjson) writes: 64 bits, unsigned.
JSON_INT_MAX = 2**64 - 1


# The list an answer to each operation is made of: without it, it is no answer at all.
_PARTS = {Operation.CHAT: "choices", Operation.COMPLETIONS: "choices", Operation.EMBEDDINGS: "data"}


def missing_part(op: Operation, data: dict[str, Any]) -> str | None:
    """The field an answer to `op` cannot be without (`choices`, `data`) when it is not a
    list, else None: such an answer is malformed, not one to complete or pass on."""
    part = _PARTS.get(op)
    if part is None or type(data.get(part)) is list:
        return None
    return part


def complete_answer(op: Operation, data: dict[str, Any], model: str) -> bool:
    """Add the fields `data` (an answer to `op`) lacks; True if it added any. Only chat
    completions, completions and embeddings are completed; other answers are left as
    they came.

    `model` (the target's upstream model) stands in for a missing `model`."""
    if op not in _COMPLETED:
        return False
    if op is not Operation.EMBEDDINGS and data.keys() >= _ANSWER_KEYS:
        return _complete_parts(op, data)
    changed = False
    if "object" not in data:
        data["object"] = op.object_name
        changed = True
    if "model" not in data:
        data["model"] = model
        changed = True
    if op is Operation.EMBEDDINGS:
        return _complete_usage(data, embeddings=True) or changed
    if "id" not in data:
        data["id"] = ("chatcmpl-" if op is Operation.CHAT else "cmpl-") + str(time.time_ns())
        changed = True
    if "created" not in data:
        data["created"] = int(time.time())
        changed = True
    return _complete_parts(op, data) or changed


def _complete_parts(op: Operation, data: dict[str, Any]) -> bool:
    """The choices and the usage of a chat completion's or a completion's answer."""
    changed = False
    choices = data.get("choices")
    if isinstance(choices, list):
        for position, choice in enumerate(choices):
            if isinstance(choice, dict) and not (
                op is Operation.CHAT
                and choice.keys() >= _CHOICE_KEYS
                and isinstance(message := choice.get("message"), dict)
                and message.keys() >= _MESSAGE_KEYS
            ):
                changed = _complete_choice(op, choice, position) or changed
    usage = data.get("usage")
    if isinstance(usage, dict) and "total_tokens" not in usage:
        changed = _complete_usage(data, embeddings=False) or changed
    return changed


def _complete_choice(op: Operation, choice: dict[str, Any], position: int) -> bool:
    added = False
    if "index" not in choice:
        choice["index"] = position
        added = True
    for name in _NULL_CHOICE_FIELDS:
        if name not in choice:
            choice[name] = None
            added = True
    if op is Operation.COMPLETIONS:
        if "text" not in choice:
            choice["text"] = ""
            added = True
        return added
    message = choice.get("message")
    if not isinstance(message, dict):
        return added
    for name, value in _MESSAGE_DEFAULTS:
        if name not in message:
            message[name] = value
            added = True
    return added


def _complete_usage(data: dict[str, Any], *, embeddings: bool) -> bool:
    """`usage` with the counts the schema requires, where the parts to compute them exist."""
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return False
    prompt = usage.get("prompt_tokens")
    if embeddings:
        if "total_tokens" not in usage and isinstance(prompt, int):
            usage["total_tokens"] = prompt
            return True
        return False
    completion = usage.get("completion_tokens")
    if "total_tokens" not in usage and isinstance(prompt, int) and isinstance(completion, int):
        total = prompt + completion
        if total <= JSON_INT_MAX:  # (absurd counts add up past what JSON encoders write)
            usage["total_tokens"] = total
            return True
    return False


def answer_text(content: Any) -> Any:
    """A chat message's `content` as text where it came as a list of parts (some
    OpenAI-compatible servers answer `[{"type": "text", "text": ...}, ...]`): the parts'
    text joined; anything else as it came."""
    if type(content) is not list:
        return content
    return "".join(
        part["text"]
        for part in content
        if type(part) is dict
        and part.get("type", "text") == "text"
        and type(part.get("text")) is str
    )
