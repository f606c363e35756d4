"""The registry of the operations the router serves.

The built-in operations (chat completions, completions, embeddings, and the others of the
OpenAI API) are registered here; a plugin adds one through the `register_operations` hook.
The app serves a POST path for every registered operation, and a provider says which of
them it serves (`Provider.operations`): a model whose targets serve none of a request's
operation answers 400.
"""

from __future__ import annotations

import functools

from router.types import Operation

_REGISTERED: dict[str, Operation] = {}


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


for _builtin in (Operation.CHAT, Operation.COMPLETIONS, Operation.EMBEDDINGS):
    register(_builtin)
