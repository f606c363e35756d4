"""Hook specifications. Plugins implement these with `@router.spec.hookimpl`.

Hooks run at start-up and on config reload, never per request: after registration the core
calls provider objects directly.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from router.types import Operation
from router.upstream.provider import Provider

hookspec = pluggy.HookspecMarker("llm_router")


@hookspec
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    """Register provider classes: `register("name", ProviderClass)` makes `plugin: name` usable."""


@hookspec
def register_operations(register: Callable[[Operation], Operation]) -> None:
    """Register API operations: `register(Operation("widgets", "/widgets", ...))` serves its
    POST path, routed by model like the built-in ones (see `router.operations`)."""
