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


def complete_answer(op: Operation, data: dict[str, Any], model: str) -> bool:
    """Add the fields `data` (an answer to `op`) lacks; True if it added any. Only chat
    completions, completions and embeddings are completed; other answers are left as
    they came.

    `model` (the target's upstream model) stands in for a missing `model`."""
    if op not in _COMPLETED:
        return False
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
    choices = data.get("choices")
    if isinstance(choices, list):
        for position, choice in enumerate(choices):
            if isinstance(choice, dict):
                changed = _complete_choice(op, choice, position) or changed
    if data.get("usage") is not None:
        changed = _complete_usage(data, embeddings=False) or changed
    return changed


def _complete_choice(op: Operation, choice: dict[str, Any], position: int) -> bool:
    added = 0
    defaults: tuple[tuple[str, Any], ...] = (
        ("index", position),
        ("finish_reason", None),
        ("logprobs", None),
    )
    for name, value in defaults:
        if name not in choice:
            choice[name] = value
            added += 1
    if op is Operation.COMPLETIONS:
        if "text" not in choice:
            choice["text"] = ""
            added += 1
        return bool(added)
    message = choice.get("message")
    if not isinstance(message, dict):
        return bool(added)
    for name, value in (("role", "assistant"), ("content", None), ("refusal", None)):
        if name not in message:
            message[name] = value
            added += 1
    return bool(added)


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
        usage["total_tokens"] = prompt + completion
        return True
    return False
