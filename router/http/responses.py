"""A successful answer's headers as the ASGI server takes them: (name, value) byte pairs.

Starlette's `Response(headers=dict)` lower-cases and encodes every name and value of every
answer and scans the list for content-length and content-type. The router's own headers
have fixed names, and their values (model and provider names) come from the config, so the
names are encoded once here and the values once per distinct string; only the request id and
the rate-limit figures are encoded per request.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

RawHeaders = list[tuple[bytes, bytes]]
JSON_TYPE = (b"content-type", b"application/json")
_ENCODED: dict[str, bytes] = {}
_ENCODED_MAX = 4096  # distinct model/provider names; a reload-heavy server starts over


def encoded(value: str) -> bytes:
    """`value` as latin-1 bytes, cached: for strings from the config, not from clients."""
    out = _ENCODED.get(value)
    if out is None:
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        out = _ENCODED[value] = value.encode("latin-1")
    return out


_ATTEMPTS = [str(n).encode() for n in range(16)]


def router_headers(call: Any, request_id: str, rate: RawHeaders) -> RawHeaders:
    """`x-request-id`, `x-router-*`, then the rate-limit headers (for a
    `router.routing.dispatch.Call`)."""
    target = call.target
    answered = call.answered_by or call.route
    provider = target.runtime.name if target else ""
    return _pairs(request_id, answered.name, provider, len(call.attempts), rate)


def attempt_headers(call: Any, target: Any, request_id: str, rate: RawHeaders) -> RawHeaders:
    """What `router_headers` will give if the attempt now under way at `target` answers."""
    route = call.trying or call.route
    return _pairs(request_id, route.name, target.runtime.name, len(call.attempts) + 1, rate)


def _pairs(
    request_id: str, model: str, provider: str, attempts: int, rate: RawHeaders
) -> RawHeaders:
    return [
        (b"x-request-id", request_id.encode("latin-1")),
        (b"x-router-model", encoded(model)),
        (b"x-router-provider", encoded(provider)),
        (
            b"x-router-attempts",
            _ATTEMPTS[attempts] if attempts < len(_ATTEMPTS) else str(attempts).encode(),
        ),
        *rate,
    ]


class JsonAnswer(Response):
    """A JSON body with headers given as byte pairs (see the module doc)."""

    media_type = "application/json"

    def __init__(self, body: bytes, headers: RawHeaders) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append(JSON_TYPE)
        self.raw_headers = headers
