"""The provider contract: pure translation between our OpenAI-shaped requests and an upstream.

A provider turns our request into the upstream's body and declares where it goes and with
which headers; the core builds the request from that. It turns responses, stream events and
errors back into OpenAI shapes and the router's error tree. It does no I/O: the core owns the
connection pool, timeouts, retries and limits. The base class speaks plain OpenAI, so an
OpenAI-compatible upstream needs no code at all and a plugin declares or overrides only what
differs; the core reads those declarations and return values, never which methods a plugin
overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import orjson
from pydantic import BaseModel, ConfigDict

from router import errors
from router.observability.redaction import MASK, MaskedHeaders, masked_headers, masked_url
from router.types import Operation, Timeouts
from router.upstream.classify import (
    classify_error,
    error_class,
    extract_error,
    implied_status,
    stream_error,
)
from router.upstream.events import parse_stream_event
from router.upstream.multipart import MultipartBody
from router.upstream.ratelimit_headers import RateLimitInfo, parse_rate_limit_headers
from router.upstream.spool import Upload
from router.upstream.sse import BOM


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
        """The body as JSON. A byte-order mark before it, which some servers send and JSON
        parsers may ignore (RFC 8259), is ignored: looked for only when the body does not
        parse, so that no answer pays for it."""
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError:
            if not self.content.startswith(BOM):
                raise
            return orjson.loads(self.content[len(BOM) :])

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
    if op.body == "json" or (op.body == "either" and not _has_uploads(payload)):
        return orjson.dumps(payload), headers
    form = MultipartBody(payload)
    headers["content-type"] = form.content_type
    headers["content-length"] = str(form.length)
    return form, headers


def _has_uploads(payload: dict[str, Any]) -> bool:
    """Whether a body is a form with files (an `either` operation's request came as one)."""
    return any(
        isinstance(value, Upload)
        or (isinstance(value, list) and any(isinstance(item, Upload) for item in value))
        for value in payload.values()
    )


class ProviderConfigError(ValueError):
    """Raised by a provider's constructor; `key` names the offending provider field."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


_CORE_ONLY = ("build_request", "plain_request")


class Provider:
    """An OpenAI-compatible upstream. A plugin declares what differs in class attributes and
    overrides the methods whose answers differ; docs/writing-a-plugin.md lists every member,
    its default and when to change it, and a test pins that list.

    Instances are built once per configured provider and called directly on every request.
    The core decides from what a provider declares and returns, never from which methods it
    overrides; `build_request` and `plain_request` are the core's and may not be overridden.
    """

    settings_model: ClassVar[type[ProviderSettings]] = ProviderSettings
    #: What the upstream serves; an instance may narrow it in `__init__` from its settings.
    operations: frozenset[Operation] = DEFAULT_OPERATIONS
    #: The upstream reports usage in streams when asked with `stream_options.include_usage`.
    stream_usage: ClassVar[bool] = True
    #: The upstream continues a trailing assistant message (used for mid-stream recovery);
    #: the default of its targets, which `continuation` in the config overrides.
    supports_continuation: ClassVar[bool] = False
    #: `transform_response` returns the upstream's answer as it came (plain OpenAI JSON),
    #: so the core may send the upstream's own bytes on instead of encoding the dict again.
    #: Off by default: a provider that translates answers must never have that skipped.
    answers_pass_through: ClassVar[bool] = False
    #: The `accept` header of streamed requests; None sends the provider's own `accept`.
    stream_accept: ClassVar[str | None] = "text/event-stream"
    #: Paths below `base_url` that differ from the operations' usual ones (`upstream_path`).
    paths: ClassVar[Mapping[Operation, str]] = {}
    models_path: ClassVar[str | None] = "/models"
    default_base_url: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _CORE_ONLY:
            if name in vars(cls):
                raise TypeError(
                    f"{cls.__module__}.{cls.__qualname__} overrides {name}(), which the core "
                    "uses to send requests and plugins may not override: change "
                    "transform_request, paths (or self.urls), extra_headers, auth_headers or "
                    "stream_accept instead (docs/writing-a-plugin.md)"
                )

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        self.settings = config.settings
        self.base_url = config.base_url.rstrip("/")
        # A dict whose repr masks values: it holds the credential header. The provider's
        # own headers, then the config's (which may replace them), then the credentials
        # (which nothing replaces).
        self.headers: dict[str, str] = MaskedHeaders(
            {
                "content-type": "application/json",
                "accept": "application/json",
                **{k.lower(): v for k, v in self.extra_headers().items()},
                **{k.lower(): v for k, v in config.headers.items()},
                **{k.lower(): v for k, v in self.auth_headers().items()},
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
        """The credential header(s), and only those: the core never lets a client or a header
        rule touch them, and `llm-switchyard explain` masks them."""
        key = self.config.api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def extra_headers(self) -> dict[str, str]:
        """Headers the upstream needs that are not credentials (a region, an API version).
        The config's `headers` may replace them, header rules may rewrite them, and
        `llm-switchyard explain` shows them."""
        return {}

    def transform_request(self, op: Operation, body: dict[str, Any], model: str) -> dict[str, Any]:
        """The upstream's JSON body. `body` is the client's own (a fresh dict: mutate freely)."""
        body["model"] = model
        return body

    def build_request(
        self, op: Operation, body: dict[str, Any], model: str, *, stream: bool = False
    ) -> httpx.Request:
        """The upstream request as an `httpx.Request`, for transports other than the core's
        (such as `local_transport`'s), tests and `explain`: `transform_request`'s body, sent
        to `urls[op]` with `headers` (and `stream_accept`). Not an override point."""
        payload = self.transform_request(op, body, model)
        prepared = self._prepared or self._prepare()
        if op.body != "json" or op.answer == "binary":
            content, header_dict = _media_request(op, payload, prepared.header_dict)
            return httpx.Request("POST", prepared.urls[op], headers=header_dict, content=content)
        headers = prepared.stream_headers if stream else prepared.headers
        return httpx.Request(
            "POST", prepared.urls[op], headers=headers, content=orjson.dumps(payload)
        )

    def plain_request(
        self, op: Operation, body: dict[str, Any], model: str, *, stream: bool = False
    ) -> PlainRequest:
        """`build_request`'s request as a `PlainRequest`, what the core's own HTTP transport
        sends. Not an override point."""
        payload = self.transform_request(op, body, model)
        prepared = self._prepared or self._prepare()
        if op.body != "json" or op.answer == "binary":
            content, media_headers = _media_request(op, payload, prepared.header_dict)
            return PlainRequest("POST", prepared.url_strings[op], media_headers, content)
        headers = prepared.stream_header_dict if stream else prepared.header_dict
        return PlainRequest("POST", prepared.url_strings[op], dict(headers), orjson.dumps(payload))

    def _prepare(self) -> _Prepared:
        """`urls` and `headers` parsed once, at the first request (after any subclass
        `__init__` adjusted them): parsing them per request was two thirds of its build cost.
        """
        headers = {k.lower(): v for k, v in self.headers.items()}
        streamed = dict(headers)
        if self.stream_accept is not None:
            streamed["accept"] = self.stream_accept
        self._prepared = _Prepared(
            {op: httpx.URL(url) for op, url in self.urls.items()},
            httpx.Headers(headers),
            httpx.Headers(streamed),
            dict(self.urls),
            headers,
            streamed,
        )
        return self._prepared

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
        if data.get("error") and not data.get("choices") and not data.get("data"):
            # An error in a 2xx answer is the error it says: its status from its code or type.
            status = implied_status(*extract_error(response.content)[:3])
            raise self.get_error(UpstreamResponse(status, response.headers, response.content))
        return data

    if TYPE_CHECKING:

        def transform_stream_event(
            self, op: Operation, data: bytes, event: str | None = None
        ) -> dict[str, Any] | None:
            """One SSE `data:` payload (never `[DONE]`) as an OpenAI chunk, or None to drop it.

            Raise an `UpstreamError` for an error frame and `MalformedResponse` for garbage.
            """
            return parse_stream_event(self, op, data, event)

    else:
        # The base method is `parse_stream_event` itself (with OpenAI's error-frame test):
        # a method calling it would cost one more Python call on every event of every stream.
        transform_stream_event = parse_stream_event

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
        status = implied_status(message, code, error_type)
        cls = error_class(status, message, code=code, error_type=error_type)
        return stream_error(cls, message, provider=self.name, status=status)

    def get_rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """Rate-limit hints from any response's headers, so the router can back off early."""
        return parse_rate_limit_headers(headers)
