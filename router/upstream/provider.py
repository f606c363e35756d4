"""The provider contract: pure translation between our OpenAI-shaped requests and an upstream.

A provider builds `httpx.Request` objects and turns responses, stream events and errors back
into OpenAI shapes and the router's error tree. It does no I/O: the core owns the connection
pool, timeouts, retries and limits. The base class speaks plain OpenAI, so an
OpenAI-compatible upstream needs no code at all and a plugin overrides only what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import orjson
from pydantic import BaseModel, ConfigDict

from router import errors
from router.observability.redaction import MASK, MaskedHeaders, masked_headers, masked_url
from router.types import Operation, Timeouts
from router.upstream.classify import classify_error, extract_error
from router.upstream.multipart import MultipartBody
from router.upstream.ratelimit_headers import RateLimitInfo, parse_rate_limit_headers


class ProviderSettings(BaseModel):
    """Plugin-specific settings (`providers.<name>.settings`); subclass to add fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """What the core hands a provider at load time: a resolved, validated endpoint.

    `api_key` is a plain `str`; its repr, like every object's a provider is handed, shows no
    credential: `api_key` and header values as `***`, the URL without user-info or query.
    """

    name: str
    base_url: str
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    settings: ProviderSettings = field(default_factory=ProviderSettings)

    def __repr__(self) -> str:
        return (
            f"ProviderConfig(name={self.name!r}, base_url={masked_url(self.base_url)!r}, "
            f"api_key={None if self.api_key is None else MASK!r}, "
            f"headers={masked_headers(self.headers)!r}, timeouts={self.timeouts!r}, "
            f"settings={self.settings!r})"
        )


@dataclass(slots=True)
class UpstreamResponse:
    """A whole upstream answer. `headers` is a case-insensitive mapping.

    Its repr shows the body's size, not the body: an error body may echo the key.
    """

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)

    def __repr__(self) -> str:
        return (
            f"UpstreamResponse(status={self.status}, headers={masked_headers(self.headers)!r}, "
            f"content=<{len(self.content)} bytes>)"
        )


#: What a provider serves unless it says otherwise: the three operations every
#: OpenAI-compatible server has.
DEFAULT_OPERATIONS = frozenset({Operation.CHAT, Operation.COMPLETIONS, Operation.EMBEDDINGS})


@dataclass(frozen=True, slots=True, repr=False)  # (holds the credential headers)
class _Prepared:
    urls: Mapping[Operation, httpx.URL]
    headers: httpx.Headers
    stream_headers: httpx.Headers
    url_strings: Mapping[Operation, str]
    header_dict: Mapping[str, str]
    stream_header_dict: Mapping[str, str]


@dataclass(slots=True)
class PlainRequest:
    """What the base `build_request` would build, without building an `httpx.Request`.

    The core sends this for providers that keep the base `build_request`, over its own
    HTTP transport: same method, URL, headers (lower-case names) and body, for a third of
    the cost. Header rules, tracing and `x-request-id` edit `headers` as they would the
    `httpx.Request`'s; the HTTP client adds `host` and `content-length` as httpx did.
    """

    method: str
    url: str
    headers: dict[str, str]
    content: bytes | MultipartBody  # a multipart upload is made as it is sent

    def __repr__(self) -> str:
        return (
            f"PlainRequest(method={self.method!r}, url={masked_url(self.url)!r}, "
            f"headers={masked_headers(self.headers)!r}, content=<{len(self.content)} bytes>)"
        )


def _media_request(
    op: Operation, payload: dict[str, Any], base: Mapping[str, str]
) -> tuple[bytes | MultipartBody, dict[str, str]]:
    """The body and headers of a request whose body is a multipart upload, or whose answer
    is bytes rather than JSON (so it accepts any type)."""
    headers = dict(base)
    if op.answer == "binary":
        headers["accept"] = "*/*"
    if op.body != "multipart":
        return orjson.dumps(payload), headers
    form = MultipartBody(payload)
    headers["content-type"] = form.content_type
    headers["content-length"] = str(form.length)
    return form, headers


class ProviderConfigError(ValueError):
    """Raised by a provider's constructor; `key` names the offending provider field."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class Provider:
    """An OpenAI-compatible upstream. Override the `transform_*`/`get_*` methods that differ.

    Class attributes describe the upstream; instances are built once per configured provider
    and called directly on every request, so keep per-request work out of `__init__`'s way.
    """

    settings_model: ClassVar[type[ProviderSettings]] = ProviderSettings
    #: What the upstream serves; an instance may narrow it in `__init__` from its settings.
    operations: frozenset[Operation] = DEFAULT_OPERATIONS
    #: The upstream reports usage in streams when asked with `stream_options.include_usage`.
    stream_usage: ClassVar[bool] = True
    #: The upstream continues a trailing assistant message (used for mid-stream recovery).
    supports_continuation: ClassVar[bool] = False
    #: Paths below `base_url` that differ from the operations' usual ones (`upstream_path`).
    paths: ClassVar[Mapping[Operation, str]] = {}
    models_path: ClassVar[str | None] = "/models"
    default_base_url: ClassVar[str | None] = None

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        self.settings = config.settings
        self.base_url = config.base_url.rstrip("/")
        # A dict whose repr masks values: it holds the credential header.
        self.headers: dict[str, str] = MaskedHeaders(
            {
                "content-type": "application/json",
                "accept": "application/json",
                **{k.lower(): v for k, v in config.headers.items()},
                **{k.lower(): v for k, v in self.auth_headers().items()},  # never overridden
            }
        )
        self.urls: dict[Operation, str] = {
            op: self.base_url + self.paths.get(op, op.upstream_path) for op in self.operations
        }
        self._prepared: _Prepared | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {masked_url(self.base_url)}>"

    def local_transport(self) -> Any:
        """A transport that answers in-process (see `router.upstream.transport.Transport`), or None
        to have the core send requests over HTTP. Only offline providers such as `mock` need it.
        """
        return None

    # -- requests -------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """The credential header(s). The core never lets a client override these."""
        key = self.config.api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def transform_request(self, op: Operation, body: dict[str, Any], model: str) -> dict[str, Any]:
        """The upstream's JSON body. `body` is the client's own (a fresh dict: mutate freely)."""
        body["model"] = model
        return body

    def build_request(
        self, op: Operation, body: dict[str, Any], model: str, *, stream: bool = False
    ) -> httpx.Request:
        """An `httpx.Request` for the upstream; the core decides how it is sent."""
        payload = self.transform_request(op, body, model)
        prepared = self._prepared or self._prepare()
        if op.body == "multipart" or op.answer == "binary":
            content, header_dict = _media_request(op, payload, prepared.header_dict)
            return httpx.Request("POST", prepared.urls[op], headers=header_dict, content=content)
        headers = prepared.stream_headers if stream else prepared.headers
        return httpx.Request(
            "POST", prepared.urls[op], headers=headers, content=orjson.dumps(payload)
        )

    def _prepare(self) -> _Prepared:
        """`urls` and `headers` parsed once, at the first request (after any subclass
        `__init__` adjusted them): parsing them per request was two thirds of its build cost.
        """
        self._prepared = _Prepared(
            {op: httpx.URL(url) for op, url in self.urls.items()},
            httpx.Headers(self.headers),
            httpx.Headers({**self.headers, "accept": "text/event-stream"}),
            dict(self.urls),
            {k.lower(): v for k, v in self.headers.items()},
            {k.lower(): v for k, v in {**self.headers, "accept": "text/event-stream"}.items()},
        )
        return self._prepared

    def plain_request(
        self, op: Operation, body: dict[str, Any], model: str, *, stream: bool = False
    ) -> PlainRequest | httpx.Request:
        """For the core: `build_request`'s request as a `PlainRequest` when this provider
        keeps the base `build_request`, else whatever its own `build_request` returns."""
        if type(self).build_request is not Provider.build_request:
            return self.build_request(op, body, model, stream=stream)
        payload = self.transform_request(op, body, model)
        prepared = self._prepared or self._prepare()
        if op.body == "multipart" or op.answer == "binary":
            content, media_headers = _media_request(op, payload, prepared.header_dict)
            return PlainRequest("POST", prepared.url_strings[op], media_headers, content)
        headers = prepared.stream_header_dict if stream else prepared.header_dict
        return PlainRequest("POST", prepared.url_strings[op], dict(headers), orjson.dumps(payload))

    def continuation_body(self, body: dict[str, Any], partial: str) -> dict[str, Any]:
        """The client's chat body asking for the rest of an answer that starts with `partial`.

        Only used when `supports_continuation` is set. The OpenAI shape sends the partial
        answer as a trailing assistant message; override for upstreams that need a flag too.
        """
        messages = [*(body.get("messages") or []), {"role": "assistant", "content": partial}]
        return {**body, "messages": messages}

    def models_request(self) -> httpx.Request | None:
        """The upstream's model listing, or None when it has none."""
        if self.models_path is None:
            return None
        return httpx.Request("GET", self.base_url + self.models_path, headers=self.headers)

    # -- responses ------------------------------------------------------------------------

    def transform_response(self, op: Operation, response: UpstreamResponse) -> dict[str, Any]:
        """The OpenAI-shaped answer from a 2xx upstream response."""
        try:
            data = response.json()
        except orjson.JSONDecodeError as exc:
            raise errors.MalformedResponse(
                f"upstream '{self.name}' sent a body that is not JSON", provider=self.name
            ) from exc
        if not isinstance(data, dict):
            raise errors.MalformedResponse(
                f"upstream '{self.name}' sent a JSON {type(data).__name__}, not an object",
                provider=self.name,
            )
        if "error" in data and not data.get("choices") and not data.get("data"):
            raise self.get_error(UpstreamResponse(500, response.headers, response.content))
        return data

    def transform_stream_event(
        self, op: Operation, data: bytes, event: str | None = None
    ) -> dict[str, Any] | None:
        """One SSE `data:` payload (never `[DONE]`) as an OpenAI chunk, or None to drop it.

        Raise an `UpstreamError` for an error frame and `MalformedResponse` for garbage.
        """
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise errors.MalformedResponse(
                f"upstream '{self.name}' sent a stream event that is not JSON", provider=self.name
            ) from exc
        if not isinstance(chunk, dict):
            raise errors.MalformedResponse(
                f"upstream '{self.name}' sent a stream event that is not an object",
                provider=self.name,
            )
        if event == "error" or chunk.get("error"):
            raise self.get_stream_error(chunk)
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                if "finish_reason" not in choice:
                    choice["finish_reason"] = None
                if op is Operation.CHAT and "delta" not in choice:
                    choice["delta"] = {}
        return chunk

    def transform_models(self, response: UpstreamResponse) -> list[dict[str, Any]]:
        """The upstream's models as OpenAI model objects."""
        data = response.json()
        items = data.get("data", []) if isinstance(data, dict) else data
        return [item for item in items if isinstance(item, dict) and "id" in item]

    # -- errors and limits ------------------------------------------------------------------

    def get_error(self, response: UpstreamResponse) -> errors.UpstreamError:
        """The router error for a non-2xx upstream response."""
        message, code, error_type, param = extract_error(response.content)
        info = self.get_rate_limit_info(response.headers)
        return classify_error(
            response.status,
            message,
            code=code,
            error_type=error_type,
            param=param,
            retry_after=info.wait_hint() if info else None,
            provider=self.name,
        )

    def get_stream_error(self, payload: dict[str, Any]) -> errors.UpstreamError:
        """The router error for a mid-stream error frame such as `{"error": {...}}`."""
        message, code, error_type, _ = extract_error(orjson.dumps(payload))
        status = 500
        if code and code.isdigit():
            status = int(code)
        else:
            # No status in the frame: a content-filter or context stop is still one, and
            # must not pass for a server error that could be retried or continued elsewhere.
            probe = classify_error(400, message, code=code, error_type=error_type)
            if isinstance(probe, errors.ContentPolicyViolation | errors.ContextLengthExceeded):
                status = 400
        error = classify_error(
            status,
            message or "failed mid-stream",
            code=code,
            error_type=error_type,
            provider=self.name,
        )
        error.message = f"upstream '{self.name}' failed mid-stream: {message or 'no reason given'}"
        return error

    def get_rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """Rate-limit hints from any response's headers, so the router can back off early."""
        return parse_rate_limit_headers(headers)
