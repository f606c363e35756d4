"""Telnyx error bodies, sorted into the router's error tree.

Telnyx answers errors in three shapes, and a proxied model may add a fourth:

- 422 FastAPI validation: `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`, in the
  pydantic v1 (`"type": "value_error.missing"`) and v2 (`"type": "missing"`, plus `input`,
  `url`, `ctx`) styles. `input` may echo the request, secrets included: it is never read.
- Telnyx v2: `{"errors": [{"code", "title", "detail", "source", "meta"}]}` (401, 429, 5xx).
- plain FastAPI: `{"detail": "..."}` (400, 404).
- anything else (an OpenAI envelope, text) goes to the core's `extract_error`.

Mid-stream failures are undocumented; `{"error": ...}`, `{"errors": [...]}` and vLLM's flat
`{"object": "error", ...}` frames are all recognised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from router.spec import UpstreamError, classify_error, extract_error

_LOC_ROOTS = frozenset({"body", "query", "header", "path"})
_JSON_DECODE_TYPES = frozenset({"json_invalid", "value_error.jsondecode"})
#: Telnyx v2 error codes whose meaning does not depend on the HTTP status.
_CODE_STATUS = {"10009": 401, "10011": 429}


@dataclass(frozen=True, slots=True)
class ParsedError:
    """What an error body says, before it is classified."""

    message: str
    code: str | None = None
    error_type: str | None = None
    param: str | None = None


def _field(loc: Any) -> str | None:
    """`["body", "messages", 0, "content"]` -> `messages.0.content`."""
    if not isinstance(loc, list | tuple):
        return None
    parts = [str(part) for part in loc]
    if parts and parts[0] in _LOC_ROOTS:
        parts = parts[1:]
    return ".".join(parts) or None


def parse_validation(items: list[Any]) -> ParsedError:
    """FastAPI's `detail` list: each failing field with its reason; `param` is the first."""
    parts: list[str] = []
    first: str | None = None
    for item in items:
        if not isinstance(item, Mapping):
            parts.append(str(item))
            continue
        field = None if item.get("type") in _JSON_DECODE_TYPES else _field(item.get("loc"))
        first = first or field
        msg = item.get("msg") or item.get("detail") or item.get("title") or "invalid value"
        parts.append(f"{field}: {msg}" if field else str(msg))
    return ParsedError("; ".join(parts) or "invalid request", param=first)


def _pointer_field(source: Any) -> str | None:
    """JSON:API `source`: `{"parameter": "x"}` or `{"pointer": "/a/b"}` -> `a.b`."""
    if not isinstance(source, Mapping):
        return None
    parameter = source.get("parameter")
    if isinstance(parameter, str) and parameter:
        return parameter
    pointer = source.get("pointer")
    if isinstance(pointer, str):
        return ".".join(part for part in pointer.split("/") if part) or None
    return None


def parse_telnyx(first: Mapping[str, Any]) -> ParsedError:
    """The first entry of a Telnyx v2 `errors` list."""
    title, detail = first.get("title"), first.get("detail")
    if title and detail and title != detail:
        message = f"{title}: {detail}"
    else:
        message = str(title or detail or "error")
    code = first.get("code")
    if code is not None:
        message += f" (Telnyx code {code})"
    return ParsedError(
        message, str(code) if code is not None else None, None, _pointer_field(first.get("source"))
    )


def parse_body(body: bytes) -> ParsedError:
    """Any error body Telnyx (or a model it proxies) may send."""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, Mapping):
        errs = data.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], Mapping):
            return parse_telnyx(errs[0])
        detail = data.get("detail")
        if isinstance(detail, list) and detail:
            return parse_validation(detail)
        if isinstance(detail, str) and detail:
            return ParsedError(detail)
        if isinstance(detail, Mapping):
            return parse_validation([detail])
    message, code, error_type, param = extract_error(body)
    return ParsedError(message, code, error_type, param)


def error_from_response(
    status: int, body: bytes, *, retry_after: float | None, provider: str
) -> UpstreamError:
    """The most specific router error for a non-2xx Telnyx response."""
    parsed = parse_body(body)
    return classify_error(
        status,
        parsed.message,
        code=parsed.code,
        error_type=parsed.error_type,
        param=parsed.param,
        retry_after=retry_after,
        provider=provider,
    )


def _frame_status(code: Any, message: str) -> int:
    """The HTTP status a stream error frame stands for (frames carry no real status)."""
    if isinstance(code, int) and 400 <= code <= 599:
        return code
    text = str(code) if code is not None else ""
    if text.isdigit() and 400 <= int(text) <= 599:
        return int(text)
    if text in _CODE_STATUS:
        return _CODE_STATUS[text]
    if text == "10007" and message.lower().startswith("unauthorized"):
        return 401
    return 500


def error_from_frame(payload: Mapping[str, Any], *, provider: str) -> UpstreamError:
    """The router error for a mid-stream error frame."""
    errs = payload.get("errors")
    err = payload.get("error")
    if isinstance(errs, list) and errs and isinstance(errs[0], Mapping):
        parsed = parse_telnyx(errs[0])
        raw_code: Any = parsed.code
    elif isinstance(err, Mapping) or payload.get("object") == "error":
        source = err if isinstance(err, Mapping) else payload
        raw_code = source.get("code", source.get("status"))
        error_type = source.get("type")
        parsed = ParsedError(
            str(source.get("message") or source.get("detail") or "upstream failed mid-stream"),
            str(raw_code) if raw_code is not None else None,
            str(error_type) if error_type is not None else None,
        )
    else:
        raw_code = None
        parsed = ParsedError(str(err) if err else "upstream failed mid-stream")
    return classify_error(
        _frame_status(raw_code, parsed.message),
        parsed.message,
        code=parsed.code,
        error_type=parsed.error_type,
        provider=provider,
    )


def is_error_frame(chunk: Mapping[str, Any]) -> bool:
    """Whether a decoded stream event is an error rather than a chunk."""
    return bool(chunk.get("error")) or bool(chunk.get("errors")) or chunk.get("object") == "error"
