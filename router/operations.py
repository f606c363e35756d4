"""The registry of the operations the router serves.

The built-in operations (chat completions, completions, embeddings, and the others of the
OpenAI API) are registered here; a plugin adds one through the `register_operations` hook.
The app serves a POST path for every registered operation, and a provider says which of
them it serves (`Provider.operations`): a model whose targets serve none of a request's
operation answers 400.

Two other APIs are served by translation (`Operation.upstream`, see `router.translate.apis`):
OpenAI's Responses API and Anthropic's Messages API (with its `count_tokens`, which the
router answers itself). Every target that serves chat completions serves them, and so does
a target whose provider serves them natively (`served_by`).
"""

from __future__ import annotations

import functools

from router.translate.apis import COUNT_TOKENS_API, MESSAGES_API, RESPONSES_API
from router.types import Operation

_REGISTERED: dict[str, Operation] = {}
_NATIVE_ONLY: dict[Operation, Operation] = {}


def register(op: Operation) -> Operation:
    """Add `op`; its name and its path must be new."""
    for other in _REGISTERED.values():
        if other is op:
            return op
        if other.name == op.name or other.path == op.path:
            raise ValueError(
                f"operation '{op.name}' ({op.path}) clashes with '{other.name}' ({other.path})"
            )
    _REGISTERED[op.name] = op
    if op.upstream is not None:
        _NATIVE_ONLY[op] = Operation(
            op.name, op.path, streams=op.streams, adapter=op.adapter, object_name=op.object_name
        )
    return op


def registered() -> tuple[Operation, ...]:
    """Every registered operation, built-in ones first, then the plugins' (whose hook runs
    the first time this is asked)."""
    _discover()
    return tuple(_REGISTERED.values())


@functools.cache
def _discover() -> None:
    from router.plugins import plugin_manager

    plugin_manager().hook.register_operations(register=register)


def named(name: str) -> Operation | None:
    return _REGISTERED.get(name)


def native_only(op: Operation) -> Operation | None:
    """For an operation served by translation, the same served by native targets only: what
    a request it cannot translate is routed as (`Route.serving` has its targets)."""
    return _NATIVE_ONLY.get(op)


def served_by(native: frozenset[Operation]) -> frozenset[Operation]:
    """What a provider serving `native` serves: those, and every operation translated to
    one of them (a target's `operations`)."""
    translated = (op for op in registered() if op.upstream in native)
    return native.union(translated)


RESPONSES = Operation(
    "responses",
    "/responses",
    streams=True,
    upstream=Operation.CHAT,
    adapter=RESPONSES_API,
    object_name="response",
)
MESSAGES = Operation(
    "messages", "/messages", streams=True, upstream=Operation.CHAT, adapter=MESSAGES_API
)
COUNT_TOKENS = Operation(
    "count_tokens", "/messages/count_tokens", upstream=Operation.CHAT, adapter=COUNT_TOKENS_API
)

for _builtin in (
    Operation.CHAT,
    Operation.COMPLETIONS,
    Operation.EMBEDDINGS,
    RESPONSES,
    MESSAGES,
    COUNT_TOKENS,
):
    register(_builtin)
