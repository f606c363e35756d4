"""The registry of the operations the router serves, and the built-in ones beyond chat.

The built-in operations are registered here: chat completions, completions and embeddings
(`router.types`), and the rest of the OpenAI surface the seed providers document, defined
below. A plugin adds one through the `register_operations` hook, which runs when plugins are
discovered (`router.plugins.plugin_manager`, before any config is compiled). The app serves a
POST path for every registered operation, and a provider says which of them it serves
(`Provider.operations`): a model whose targets serve none of a request's operation answers
400 naming the model and the operation.

Each operation says how its requests are read (`body`: JSON or a multipart upload), what they
may weigh (`max_body_bytes`), what they cost token-counting limits (`cost`, see
`router.limits.units`), how they are checked (`check`, see `router.http.validate`), and how
they are answered (`answer`: JSON, or bytes passed on as they arrive; `streams`: SSE).

Two other APIs are served by translation (`Operation.upstream`, see `router.translate.apis`):
OpenAI's Responses API and Anthropic's Messages API (with their `input_tokens` and
`count_tokens`, which the router answers itself). Every target that serves chat completions
serves them, and so does a target whose provider serves them natively (`served_by`).
"""

from __future__ import annotations

from collections.abc import Collection

from router.http import validate
from router.limits import units
from router.translate.apis import (
    COUNT_TOKENS_API,
    INPUT_TOKENS_API,
    MESSAGES_API,
    RESPONSES_API,
)
from router.types import Operation

_REGISTERED: dict[str, Operation] = {}
_NATIVE_ONLY: dict[Operation, Operation] = {}

#: OpenAI's own limit on an audio upload.
TRANSCRIPTION_MAX_BYTES = 25 * 1024 * 1024
#: OpenAI's limit on one image to edit (gpt-image-1; dall-e-2's is 4 MB). An edit may send
#: up to 16: `server.max_body_bytes_by_operation` raises it for those.
IMAGE_EDIT_MAX_BYTES = 50 * 1024 * 1024
#: OpenAI's limit on the image to vary is 4 MB (dall-e-2): that, and the form around it.
IMAGE_VARIATION_MAX_BYTES = 5 * 1024 * 1024

IMAGES = Operation(
    "images",
    "/images/generations",
    required="prompt",
    passes_streams=True,  # (partial images, as events: `stream` with `partial_images`)
    cost=units.image_cost,
    check=validate.check_images,
)
IMAGE_EDITS = Operation(
    "image_edits",
    "/images/edits",
    required="prompt",
    passes_streams=True,
    # The images (`image`, or `image[]` for several) and a `mask` uploaded in a form, or
    # referenced (`image_url`, `file_id`) in JSON, as the request's Content-Type says.
    body="either",
    max_body_bytes=IMAGE_EDIT_MAX_BYTES,
    cost=units.image_cost,
    check=validate.check_image_edit,
    check_form=validate.check_image_edit_form,
)
IMAGE_VARIATIONS = Operation(
    "image_variations",
    "/images/variations",  # variations of an uploaded image (dall-e-2), answered as images
    required="image",
    body="multipart",
    max_body_bytes=IMAGE_VARIATION_MAX_BYTES,
    cost=units.image_cost,
    check=validate.check_image_variation,
)
SPEECH = Operation(
    "speech",
    "/audio/speech",
    required="input",
    answer="binary",
    cost=units.speech_cost,
    check=validate.check_speech,
)
TRANSCRIPTIONS = Operation(
    "transcriptions",
    "/audio/transcriptions",
    required="file",
    body="multipart",
    answer="binary",  # json, verbose_json, text, srt or vtt: passed on as the upstream sends it
    max_body_bytes=TRANSCRIPTION_MAX_BYTES,
    cost=units.transcription_cost,
    check=validate.check_transcription,
)
TRANSLATIONS = Operation(
    "translations",
    "/audio/translations",  # audio in any language, transcribed in English
    required="file",
    body="multipart",
    answer="binary",  # json, verbose_json, text, srt or vtt, as for transcriptions
    max_body_bytes=TRANSCRIPTION_MAX_BYTES,
    cost=units.transcription_cost,
    check=validate.check_transcription,
)
MODERATIONS = Operation(
    "moderations", "/moderations", required="input", check=validate.check_moderation
)
RERANK = Operation(
    "rerank",
    "/rerank",  # the shape Cohere, Jina and Tokligence use (and vLLM, LiteLLM serve)
    required="query",
    cost=units.rerank_cost,
    check=validate.check_rerank,
)
Operation.IMAGES, Operation.SPEECH, Operation.TRANSCRIPTIONS = IMAGES, SPEECH, TRANSCRIPTIONS
Operation.IMAGE_EDITS, Operation.TRANSLATIONS = IMAGE_EDITS, TRANSLATIONS
Operation.IMAGE_VARIATIONS = IMAGE_VARIATIONS
Operation.MODERATIONS, Operation.RERANK = MODERATIONS, RERANK

#: Every built-in operation, in the order `/v1/models` and `explain` list them.
BUILTIN = (
    Operation.CHAT,
    Operation.COMPLETIONS,
    Operation.EMBEDDINGS,
    IMAGES,
    IMAGE_EDITS,
    IMAGE_VARIATIONS,
    SPEECH,
    TRANSCRIPTIONS,
    TRANSLATIONS,
    MODERATIONS,
    RERANK,
)


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
    """Every registered operation: the built-in ones first, then the plugins' (registered
    when plugins are discovered)."""
    return tuple(_REGISTERED.values())


def named(name: str) -> Operation | None:
    return _REGISTERED.get(name)


def native_only(op: Operation) -> Operation | None:
    """For an operation served by translation, the same served by native targets only: what
    a request it cannot translate is routed as (`Route.serving` has its targets)."""
    return _NATIVE_ONLY.get(op)


def native_operations(names: Collection[str]) -> set[Operation]:
    """The operations a provider serves itself for the APIs it lists under `native`: each
    API's, and those only its native servers serve (`/responses/compact`)."""
    ops = {op for op in registered() if op.name in names}
    return ops.union(*(_NATIVE_WITH.get(op, ()) for op in list(ops)))


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
INPUT_TOKENS = Operation(
    "input_tokens", "/responses/input_tokens", upstream=Operation.CHAT, adapter=INPUT_TOKENS_API
)
# A long conversation compacted by the model into items of its own (an opaque `compaction`
# item among them), which only a target serving the Responses API natively can make: served
# by those alone, passed through untranslated.
RESPONSES_COMPACT = Operation("responses_compact", "/responses/compact")
# What a provider serving an API natively (`providers.<name>.native`) serves besides it.
_NATIVE_WITH: dict[Operation, tuple[Operation, ...]] = {RESPONSES: (RESPONSES_COMPACT,)}


def names(ops: frozenset[Operation]) -> list[str]:
    """The names of `ops`, in registration order: how `/v1/models` and `explain` list them."""
    return [op.name for op in _REGISTERED.values() if op in ops]


for _builtin in (*BUILTIN, RESPONSES, MESSAGES, COUNT_TOKENS, INPUT_TOKENS, RESPONSES_COMPACT):
    register(_builtin)
