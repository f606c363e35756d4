"""`plugin: openai`: any OpenAI-compatible upstream, configured from YAML alone."""

from __future__ import annotations

from collections.abc import Callable

from router.provider import Provider
from router.spec import hookimpl


class OpenAIProvider(Provider):
    """The base behaviour is plain OpenAI; nothing to override."""

    default_base_url = "https://api.openai.com/v1"


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("openai", OpenAIProvider)
