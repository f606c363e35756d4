"""`plugin: openai`: any OpenAI-compatible upstream, configured from YAML alone."""

from __future__ import annotations

from collections.abc import Callable

from router.operations import BUILTIN
from router.spec import Provider, hookimpl


class OpenAIProvider(Provider):
    """The base behaviour is plain OpenAI; nothing to override."""

    default_base_url = "https://api.openai.com/v1"
    #: Answers are plain OpenAI, sent on as they came.
    answers_pass_through = True
    #: Every built-in operation: chat, completions, embeddings, images, speech,
    #: transcriptions, moderations and rerank (which OpenAI itself lacks, and vLLM and other
    #: OpenAI-compatible servers have: an upstream without an operation answers 404, and the
    #: request moves on to the next target).
    operations = frozenset(BUILTIN)
    #: Sends a broken answer back as a trailing assistant message; OpenAI-compatible servers
    #: such as vLLM continue it. Only used where a model's `stream_recovery` continues, and
    #: for targets whose config does not say `continuation: false`.
    supports_continuation = True


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("openai", OpenAIProvider)
