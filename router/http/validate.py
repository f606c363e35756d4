"""Checks on client request bodies, so that mistakes get a 400 naming the field.

Only what the router itself relies on is checked; every other field passes through to the
providers, which know their own parameters.
"""

from __future__ import annotations

from typing import Any

from router import errors
from router.types import Operation

_TEXT_OR_LIST = frozenset({Operation.COMPLETIONS, Operation.EMBEDDINGS})
_NUMBERS = frozenset(("temperature", "top_p", "frequency_penalty", "presence_penalty"))
_INTEGERS = frozenset(("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs"))
_TYPED = _NUMBERS | _INTEGERS


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
    if stream and not op.streams:
        raise _invalid(f"{op.name} cannot be streamed", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _invalid("'stream_options' must be an object", "stream_options")
    for name in sorted(body.keys() & _TYPED):  # (sorted: the same first error every time)
        number = body[name]
        if number is None or (type(number) is int or (type(number) is float and name in _NUMBERS)):
            continue
        if isinstance(number, bool) or not isinstance(number, int | float):
            kind = "a number" if name in _NUMBERS else "an integer"
            raise _invalid(f"'{name}' must be {kind}", name)
        if name in _INTEGERS and not isinstance(number, int):
            raise _invalid(f"'{name}' must be an integer", name)
    return model, stream
