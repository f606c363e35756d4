"""Checks on client request bodies, so that mistakes get a 400 naming the field.

Only what the router itself relies on is checked; every other field passes through to the
providers, which know their own parameters.
"""

from __future__ import annotations

from typing import Any

from router import errors
from router.types import Operation
from router.upstream.spool import Upload

_TEXT_OR_LIST = frozenset({Operation.COMPLETIONS, Operation.EMBEDDINGS})
_NUMBERS = frozenset(("temperature", "top_p", "frequency_penalty", "presence_penalty"))
_INTEGERS = frozenset(
    ("max_tokens", "max_completion_tokens", "n", "best_of", "seed", "top_logprobs")
)
_TYPED = _NUMBERS | _INTEGERS
# The least each count may be: the budgets and token limits estimate from them.
_AT_LEAST = {"max_tokens": 0, "max_completion_tokens": 0, "n": 1, "best_of": 1}


def _invalid(message: str, param: str) -> errors.InvalidRequest:
    return errors.InvalidRequest(message, param=param)


def check_body(op: Operation, body: Any) -> tuple[str, bool]:
    """(model, stream) of a valid body; raises InvalidRequest naming the first bad field."""
    if not isinstance(body, dict):
        raise _invalid("the request body must be a JSON object", "body")
    model = body.get("model")
    if model is None:
        raise _invalid("missing required parameter: 'model'", "model")
    if not isinstance(model, str) or not model:
        raise _invalid("'model' must be a non-empty string", "model")
    required = op.required
    value = body.get(required) if required is not None else None
    if required is not None and value is None:
        raise _invalid(f"missing required parameter: '{required}'", required)
    if op is Operation.CHAT:
        if not isinstance(value, list) or not value:
            raise _invalid("'messages' must be a non-empty array", "messages")
        for i, message in enumerate(value):
            if not isinstance(message, dict):
                raise _invalid(f"'messages[{i}]' must be an object", f"messages[{i}]")
            if not isinstance(message.get("role"), str):
                raise _invalid(
                    f"missing required parameter: 'messages[{i}].role'", f"messages[{i}].role"
                )
    elif (
        required is not None
        and op in _TEXT_OR_LIST
        and (not isinstance(value, str | list) or (isinstance(value, list) and not value))
    ):
        raise _invalid(f"'{required}' must be a string or a non-empty array", required)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean", "stream")
    if stream and not op.streams and not op.passes_streams:
        raise _invalid(f"{op.name} cannot be streamed", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _invalid("'stream_options' must be an object", "stream_options")
    typed = body.keys() & _TYPED
    for name in sorted(typed) if typed else ():  # (sorted: the same first error every time)
        number = body[name]
        if type(number) is int:
            least = _AT_LEAST.get(name)
            if least is not None and number < least:
                raise _invalid(f"'{name}' must be an integer of at least {least}", name)
            continue
        if number is None or (type(number) is float and name in _NUMBERS):
            continue
        if isinstance(number, bool) or not isinstance(number, int | float):
            kind = "a number" if name in _NUMBERS else "an integer"
            raise _invalid(f"'{name}' must be {kind}", name)
        if name in _INTEGERS and not isinstance(number, int):
            raise _invalid(f"'{name}' must be an integer", name)
    if op.check is not None:
        op.check(body)
    return model, stream


def check_form(op: Operation, fields: dict[str, Any]) -> tuple[str, bool]:
    """(model, stream) of a valid multipart form: its text fields and `Upload`s. Never a
    stream to relay as chat's SSE: an operation whose answer may stream (a transcription
    with `stream=true`) passes its bytes on as they come (`router.upstream.media`), and one
    that `passes_streams` says so by `stream` (an image edit's partial images)."""
    model = fields.get("model")
    if model is None:
        raise _invalid("missing required parameter: 'model'", "model")
    if not isinstance(model, str) or not model:
        raise _invalid("'model' must be a non-empty text field", "model")
    if op.required is not None and op.required not in fields:
        raise _invalid(f"missing required parameter: '{op.required}'", op.required)
    check = op.check_form if op.check_form is not None else op.check
    if check is not None:
        check(fields)
    return model, op.passes_streams and fields.get("stream") in _TRUE


_TRUE = ("true", "True", "1")  # a form's yes


# -- the checks of the built-in operations (`Operation.check`, see `router.operations`) --


def check_images(body: dict[str, Any]) -> None:
    _text(body, "prompt")
    n = body.get("n")
    if n is not None and (type(n) is not int or not 1 <= n <= 10):
        raise _invalid("'n' must be an integer from 1 to 10", "n")


def check_image_edit(body: dict[str, Any]) -> None:
    """An edit as JSON: a prompt, `images` as references (`image_url` or `file_id`), an
    optional `mask` the same way, `n` from 1 to 10."""
    _text(body, "prompt")
    images = body.get("images")
    if not isinstance(images, list) or not images:
        raise _invalid("'images' must be a non-empty array of image references", "images")
    for i, image in enumerate(images):
        _reference(image, f"images[{i}]")
    if body.get("mask") is not None:
        _reference(body["mask"], "mask")
    n = body.get("n")
    if n is not None and (type(n) is not int or not 1 <= n <= 10):
        raise _invalid("'n' must be an integer from 1 to 10", "n")


def _reference(value: Any, param: str) -> None:
    if not isinstance(value, dict) or not any(
        isinstance(value.get(name), str) and value[name] for name in ("image_url", "file_id")
    ):
        raise _invalid(f"'{param}' must be an object with an 'image_url' or a 'file_id'", param)


def check_image_edit_form(fields: dict[str, Any]) -> None:
    """An edit's form: a prompt, one image or more (`image`, or `image[]` as the SDK sends
    several), at most one mask, `n` as digits from 1 to 10, and `stream` true or false."""
    _text(fields, "prompt")
    images = [fields[name] for name in ("image", "image[]") if name in fields]
    uploads = [u for value in images for u in (value if isinstance(value, list) else [value])]
    if not uploads:
        raise _invalid("missing required parameter: 'image'", "image")
    if not all(isinstance(u, Upload) for u in uploads):
        raise _invalid("'image' must be a file upload (a part with a filename)", "image")
    mask = fields.get("mask")
    if mask is not None and not isinstance(mask, Upload):
        raise _invalid("'mask' must be a file upload (a part with a filename)", "mask")
    _form_count(fields)
    stream = fields.get("stream")
    if stream is not None and stream not in _TRUE and stream not in ("false", "False", "0"):
        raise _invalid("'stream' must be true or false", "stream")


def check_image_variation(fields: dict[str, Any]) -> None:
    """A variation's form: one image uploaded, `n` as digits from 1 to 10."""
    if not isinstance(fields.get("image"), Upload):
        raise _invalid("'image' must be a file upload (a part with a filename)", "image")
    _form_count(fields)


def check_speech(body: dict[str, Any]) -> None:
    _text(body, "input")


def check_transcription(fields: dict[str, Any]) -> None:
    if not isinstance(fields.get("file"), Upload):
        raise _invalid("'file' must be a file upload (a part with a filename)", "file")


def check_moderation(body: dict[str, Any]) -> None:
    value = body.get("input")
    if not isinstance(value, str | list) or (isinstance(value, list) and not value):
        raise _invalid("'input' must be a string or a non-empty array", "input")


def check_rerank(body: dict[str, Any]) -> None:
    _text(body, "query")
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents:
        raise _invalid("'documents' must be a non-empty array", "documents")
    for i, document in enumerate(documents):
        if not isinstance(document, str | dict):
            raise _invalid(f"'documents[{i}]' must be a string or an object", f"documents[{i}]")
    top_n = body.get("top_n")
    if top_n is not None and (type(top_n) is not int or top_n < 1):
        raise _invalid("'top_n' must be a positive integer", "top_n")


def _form_count(fields: dict[str, Any]) -> None:
    """A form's `n`, when given: digits, from 1 to 10 (the images an image form asks for)."""
    n = fields.get("n")
    if n is not None and not (
        isinstance(n, str) and n.isascii() and n.isdigit() and 1 <= int(n) <= 10
    ):
        raise _invalid("'n' must be an integer from 1 to 10", "n")


def _text(body: dict[str, Any], name: str) -> None:
    if not isinstance(body.get(name), str):
        raise _invalid(f"'{name}' must be a string", name)
