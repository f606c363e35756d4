"""Plugin discovery: built-in providers and entry points in the `llm_router` group.

Built-ins register through the same hook as third-party plugins, and hooks are called
through pluggy, so its ordering and wrappers apply; the operations plugins register join
`router.operations` when the manager is made. Discovery runs once per process; set
LLM_ROUTER_TRACE_PLUGINS=1 to print every hook call.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from collections.abc import Mapping
from dataclasses import dataclass

import pluggy

import router
from router import hookspecs, operations
from router.upstream.provider import Provider

ENTRY_POINT_GROUP = "llm_router"


@dataclass(frozen=True, slots=True)
class ProviderPlugin:
    """A registered provider class. Its distribution is looked up when asked (for
    `llm-switchyard plugins`), not at start-up: reading every installed package's metadata
    takes a noticeable part of a second."""

    name: str
    provider_class: type[Provider]

    @property
    def distribution(self) -> str:
        return distribution_of(self.provider_class)[0]

    @property
    def version(self) -> str:
        return distribution_of(self.provider_class)[1]


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
    found: dict[str, ProviderPlugin] = {}

    def register(name: str, cls: type[Provider]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            raise TypeError(f"provider plugin '{name}' registered {cls!r}, not a Provider class")
        if name in found:
            raise RuntimeError(
                f"provider plugin '{name}' is registered twice "
                f"({found[name].distribution} and {distribution_of(cls)[0]})"
            )
        found[name] = ProviderPlugin(name, cls)

    plugin_manager().hook.register_providers(register=register)
    return found


def distribution_of(cls: type) -> tuple[str, str]:
    """(distribution, version) of the package a provider class comes from: the one pluggy
    loaded its entry point from, else the installed package that holds its top-level module
    (the core's, for built-ins)."""
    return _distribution(cls.__module__.partition(".")[0])


@functools.cache
def _distribution(top: str) -> tuple[str, str]:
    for plugin, dist in plugin_manager().list_plugin_distinfo():
        if getattr(plugin, "__name__", "").partition(".")[0] == top:
            return dist.project_name, dist.version
    names = _package_owners().get(top)
    if names:
        return names[0], importlib.metadata.version(names[0])
    if top == router.__name__:  # the core, run from a source tree
        return top, router.__version__
    return top, "(not installed)"


@functools.cache
def _package_owners() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


# The provider plugins this project publishes, by `plugin:` name, and their distributions.
# The one place a distribution name is spelled: a hint never guesses a package from a name
# in a config, since anyone could publish a package under a guessed name.
KNOWN_PLUGINS: dict[str, str] = {
    "telkom": "llm-switchyard-telkom",
    "telnyx": "llm-switchyard-telnyx",
    "litellm": "llm-switchyard-litellm",
    "tokligence": "llm-switchyard-tokligence",
}


def install_hint(plugin: str) -> str:
    """What to do about a plugin name the config uses but nobody registered."""
    distribution = KNOWN_PLUGINS.get(plugin)
    if distribution is not None:
        return f"to add it: pip install {distribution}"
    return (
        "it is not a plugin of this project: check the name (`llm-switchyard plugins` lists the "
        "installed ones), or install the package that provides it (docs/writing-a-plugin.md)"
    )
