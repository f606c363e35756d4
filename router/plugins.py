"""Plugin discovery: built-in providers and entry points in the `llm_router` group.

Built-ins register through the same hook as third-party plugins; the operations plugins
register join `router.operations` when the manager is made. Discovery runs once per
process; set LLM_ROUTER_TRACE_PLUGINS=1 to print every hook call.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import pluggy

from router import hookspecs, operations
from router.upstream.provider import Provider

ENTRY_POINT_GROUP = "llm_router"


@dataclass(frozen=True, slots=True)
class ProviderPlugin:
    """A registered provider class and the distribution it came from."""

    name: str
    provider_class: type[Provider]
    distribution: str
    version: str


def _builtin_modules() -> list[object]:
    from router.providers import mock, openai

    return [openai, mock]


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for module in _builtin_modules():
        pm.register(module)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    if os.environ.get("LLM_ROUTER_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(print)
        pm.enable_tracing()
    pm.hook.register_operations(register=operations.register)
    return pm


@functools.cache
def provider_plugins() -> dict[str, ProviderPlugin]:
    """Every registered provider, by the name used as `plugin:` in the config."""
    import router

    pm = plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    found: dict[str, ProviderPlugin] = {}
    for impl in pm.hook.register_providers.get_hookimpls():
        dist = dists.get(id(impl.plugin))
        dist_name = dist.project_name if dist is not None else "llm-router"
        version = dist.version if dist is not None else router.__version__

        def register(
            name: str, cls: type[Provider], _d: str = dist_name, _v: str = version
        ) -> None:
            if name in found:
                raise RuntimeError(
                    f"provider plugin '{name}' is registered twice "
                    f"({found[name].distribution} and {_d})"
                )
            found[name] = ProviderPlugin(name, cls, _d, _v)

        impl.function(register=register)
    return found


# The provider plugins this project publishes, by `plugin:` name, and their distributions.
# The one place a distribution name is spelled: a hint never guesses a package from a name
# in a config, since anyone could publish a package under a guessed name.
KNOWN_PLUGINS: dict[str, str] = {
    "telkom": "llm-router-telkom",
    "telnyx": "llm-router-telnyx",
    "litellm": "llm-router-litellm",
    "tokligence": "llm-router-tokligence",
}


def install_hint(plugin: str) -> str:
    """What to do about a plugin name the config uses but nobody registered."""
    distribution = KNOWN_PLUGINS.get(plugin)
    if distribution is not None:
        return f"to add it: pip install {distribution}"
    return (
        "it is not a plugin of this project: check the name (`llm-router plugins` lists the "
        "installed ones), or install the package that provides it (docs/writing-a-plugin.md)"
    )
