"""The data a request travels through, and nothing else: plain dataclasses with no logic.

A request (`Call`) reads the compiled `RoutingGraph`: its routes (public models), their
targets (a provider and an upstream model each, with the live counters strategies read), and
the client keys with what each may reach. `router.graph` builds these once per config;
`router.routing` and `router.upstream` read them on every request.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from router.observability.redaction import Redactor
from router.upstream.connection import DEFAULT_MAX_ANSWER_BYTES

if TYPE_CHECKING:
    import httpx

    from router.config.loader import ConfigIssue
    from router.config.models import RetryConfig, RouterConfig
    from router.errors import ErrorKind
    from router.graph.rewrites import HeaderRules
    from router.http.body import BodyLimits
    from router.limits.admission import CallLimits
    from router.limits.policies import LimitTable
    from router.routing.breaker import Breaker
    from router.routing.failure import Step
    from router.spend.budget_table import BudgetTable
    from router.spend.call_budget import CallBudget
    from router.spend.one_budget import OneBudget
    from router.spend.prices import Price
    from router.upstream.provider import PlainRequest, Provider
    from router.upstream.transport import Transport


class Operation:
    """An API operation the router serves: a client path, routed by the `model` of its body.

    Operations are values, registered once (`router.operations`): the built-in ones below,
    and any a plugin registers through the `register_operations` hook. Each says how its
    requests are read and answered, so the core serves them all the same way. Compared and
    hashed by identity: each exists once.
    """

    __slots__ = (
        "adapter",
        "answer",
        "body",
        "check",
        "check_form",
        "cost",
        "max_body_bytes",
        "name",
        "object_name",
        "passes_streams",
        "path",
        "required",
        "streams",
        "upstream",
        "upstream_path",
    )

    CHAT: ClassVar[Operation]
    COMPLETIONS: ClassVar[Operation]
    EMBEDDINGS: ClassVar[Operation]
    # Defined with their costs and checks in `router.operations` (which `router.spec` imports).
    IMAGES: ClassVar[Operation]
    IMAGE_EDITS: ClassVar[Operation]
    IMAGE_VARIATIONS: ClassVar[Operation]
    SPEECH: ClassVar[Operation]
    TRANSCRIPTIONS: ClassVar[Operation]
    TRANSLATIONS: ClassVar[Operation]
    MODERATIONS: ClassVar[Operation]
    RERANK: ClassVar[Operation]

    def __init__(
        self,
        name: str,
        path: str,
        *,
        upstream_path: str | None = None,
        required: str | None = None,
        streams: bool = False,
        passes_streams: bool = False,
        body: Literal["json", "multipart", "either"] = "json",
        answer: Literal["json", "binary"] = "json",
        max_body_bytes: int | None = None,
        object_name: str | None = None,
        upstream: Operation | None = None,
        adapter: Any = None,
        cost: Callable[[dict[str, Any]], int] | None = None,
        check: Callable[[dict[str, Any]], None] | None = None,
        check_form: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.name = name  # e.g. "chat"; how logs, metrics and `explain` name it
        self.path = path  # the client's path below `/v1`, e.g. "/chat/completions"
        # Where an OpenAI-compatible upstream serves it (below its base URL).
        self.upstream_path = path if upstream_path is None else upstream_path
        self.required = required  # a body field without which the request is a 400
        self.streams = streams  # answers in server-sent events when the body says `stream`
        # Takes `stream` too, but its events are not chat's: they pass to the client as the
        # upstream sends them, as bytes (images' partial images; see `router.upstream.media`).
        self.passes_streams = passes_streams
        # How requests come: a JSON object, a multipart form (uploads), or `either`, as the
        # request's Content-Type says (and then so does the upstream request).
        self.body = body
        # A JSON object; or bytes passed on with their content type as they arrive (audio,
        # subtitles, ...: see `router.upstream.media`).
        self.answer = answer
        # The largest request body (bytes) this operation accepts by default (the config's
        # `server.max_body_bytes_by_operation` overrides it); None: `server.max_body_bytes`.
        self.max_body_bytes = max_body_bytes
        self.object_name = object_name  # the `object` of its OpenAI answer, when it has one
        # What a request costs token-counting rate limits, in the operation's own unit
        # (`router.limits.units`), never reconciled with the answer's usage; None: tokens,
        # the prompt's estimate plus `max_tokens`, replaced by the usage the upstream reports.
        self.cost = cost
        # Checks of the body beyond the generic ones (`model`, `required`, `stream`): raises
        # `InvalidRequest` naming the field (`router.http.validate`); for an `either`
        # operation, `check_form` checks a form's fields and `check` a JSON body.
        self.check = check
        self.check_form = check_form
        # Another API served through this one: its requests are translated to `upstream`
        # (chat) for targets that do not serve it natively; `adapter` holds the translator
        # calls (a `router.translate.apis.Api`).
        self.upstream = upstream
        self.adapter = adapter

    @property
    def value(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Operation {self.name} {self.path}>"


Operation.CHAT = Operation(
    "chat",
    "/chat/completions",
    required="messages",
    streams=True,
    object_name="chat.completion",
)
Operation.COMPLETIONS = Operation(
    "completions", "/completions", required="prompt", streams=True, object_name="text_completion"
)
Operation.EMBEDDINGS = Operation("embeddings", "/embeddings", required="input", object_name="list")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. `first_token`: until the first byte of the answer; `idle`: between chunks."""

    connect: float = 5.0
    first_token: float = 60.0
    idle: float = 30.0
    total: float = 300.0


@dataclass(eq=False, slots=True)
class ProviderRuntime:
    """A configured provider and, once the server starts, the transport that sends for it."""

    name: str
    provider: Provider
    definition: str  # a digest of the provider's config: equal digests share pools on reload
    max_connections: int
    timeouts: Timeouts
    transport: Transport | None = None
    # The largest answer (and stream event) read from its upstream (`max_answer_bytes`).
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    # The graph's redactor: what scrubs this provider's errors of every configured secret.
    redactor: Redactor = field(default_factory=Redactor)


@dataclass(eq=False, slots=True)
class Target:
    """One (provider, upstream model) a route can use, with the live stats strategies read."""

    runtime: ProviderRuntime
    model: str
    weight: float
    label: str
    # Effective upstream timeouts: the target's own, else its model's, else its provider's
    # (`connect` is always the provider's); resolved per field when the graph is compiled.
    timeouts: Timeouts
    operations: frozenset[Operation]  # its provider's, copied for speed
    in_flight: int = 0
    latency: float | None = None  # moving average of time to first byte, seconds
    cool_until: float = 0.0  # monotonic time before which the upstream asked us to stay away
    breaker: Breaker | None = None
    price: Price | None = None  # what its tokens cost (`router.spend.prices`)
    # Whether it may be sent a request ending in an assistant prefill, to continue a broken
    # stream: the target's `continuation`, else its provider's, else the plugin's default.
    continues: bool = False
    # Its latest times to first byte, when a hedge waits for a percentile of them.
    ttfts: deque[float] | None = None

    @property
    def provider(self) -> Provider:
        return self.runtime.provider


Strategy = Callable[[Sequence[Target]], list[Target]]


@dataclass(frozen=True, slots=True)
class Route:
    """A public model: its targets, how to order them, and what to do when they fail."""

    name: str
    targets: tuple[Target, ...]
    strategy: Strategy
    retries: RetryConfig
    fallbacks: tuple[str, ...]
    context_fallback: str | None
    operations: frozenset[Operation]
    # Per operation, the targets whose provider serves it, in configured order.
    serving: Mapping[Operation, tuple[Target, ...]]
    steps: Mapping[ErrorKind, Step]
    # When a stream breaks after its first byte: "error", "continue", "regenerate" or
    # "continue_or_regenerate" (`router.routing.recovery`).
    stream_recovery: str = "error"
    hedge: HedgePolicy | None = None  # `router.routing.hedge`


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """When a second attempt starts beside a first that has not answered: after `after`
    seconds, or with `percentile` (0-1) the target's own observed time to first byte at that
    percentile, never below `floor`, once it has `min_samples` of them; at most `most` per
    request."""

    after: float
    percentile: float | None = None
    floor: float = 0.0
    most: int = 1
    min_samples: int = 20


@dataclass(frozen=True, slots=True)
class ClientKey:
    """A client key as the router knows it: a digest, a name and what it may use."""

    name: str
    digest: bytes = field(repr=False)
    allowed: frozenset[str]
    models_body: bytes


@dataclass(frozen=True, slots=True)
class Reach:
    """Where the requests of one allow-list may go, per model: the fallback chain and the
    context-fallback chain, without the models the allow-list lacks (skipped, their own
    fallbacks kept)."""

    chains: Mapping[str, tuple[Route, ...]]  # per model: it, then its fallbacks, walked
    context: Mapping[str, tuple[Route, ...]]  # per model with a `context_fallback`: that chain


@dataclass(frozen=True, slots=True)
class RoutingGraph:
    """The compiled config. Immutable: a reload builds a new one and swaps it."""

    config: RouterConfig = field(repr=False)  # (its header values may be credentials)
    source_file: str
    providers: Mapping[str, ProviderRuntime]
    routes: Mapping[str, Route]
    keys: Mapping[bytes, ClientKey]
    anonymous: ClientKey | None  # the identity used when `server.auth: none`
    # Per model, the routes a request for it may walk (`router.graph.links.walk_fallbacks`).
    chains: Mapping[str, tuple[Route, ...]]
    # Per client key name, the same chains without the models that key may not use.
    reach: Mapping[str, Reach]
    limits: LimitTable
    rewrites: HeaderRules
    budgets: BudgetTable
    # `config.server.max_body_bytes`, read on every request: a plain field, not three
    # attribute look-ups through pydantic models.
    max_body_bytes: int
    body_limits: BodyLimits  # the request body's size, time and depth limits together
    # Per operation, the body limits where they differ from `body_limits` (a larger size for
    # an upload, say: `router.graph.bodies`).
    operation_body_limits: Mapping[Operation, BodyLimits] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)
    config_hash: str = ""  # sha256 of the file's bytes (`file_hash`); "" when built in memory
    # Every secret of the config (`router.config.secrets`), plugin settings' included; the
    # redactor built from them; and the key paths whose values came from `${ENV}`.
    secrets: tuple[str, ...] = field(default=(), repr=False)
    redactor: Redactor = field(default_factory=Redactor)
    from_env: frozenset[tuple[str | int, ...]] = frozenset()
    warnings: tuple[ConfigIssue, ...] = ()  # see `router.config.lint`
    # Keys presented and verified against `keys` since this graph was loaded (see
    # `router.http.auth.authenticate`): at most one entry per configured key.
    verified: dict[str, ClientKey] = field(default_factory=dict, repr=False)


@dataclass(slots=True)
class Attempt:
    """One try at one target, for logs and the `x-router-attempts` header."""

    target: str
    outcome: str
    seconds: float
    # Tokens it used upstream that the answer's usage does not count (a stream that broke,
    # a hedge cancelled), estimated; the access log and metrics add them up.
    wasted: int = 0


PrepareHeaders = Callable[["httpx.Request | PlainRequest", Target], None]


@dataclass(slots=True)
class Call:
    """One client request on its way through the graph."""

    op: Operation
    body: dict[str, Any]
    stream: bool
    key: ClientKey
    request_id: str
    route: Route
    deadline: float  # time.monotonic() by which the whole request must be done
    attempts: list[Attempt] = field(default_factory=list)
    answered_by: Route | None = None
    target: Target | None = None
    usage: dict[str, Any] | None = None
    # What a metered operation's answer counts for its price (`router.spend.metered`):
    # images generated, milliseconds of audio transcribed, characters spoken; 0 otherwise.
    units: int = 0
    limits: CallLimits | None = None  # when rate-limit policies apply
    budget: CallBudget | OneBudget | None = None  # when spend budgets apply
    prepare: PrepareHeaders | None = None  # sets upstream request headers
    trying: Route | None = None  # the route of the target an attempt is under way at
    running: int = 0  # attempts under way (two while a hedge races the first)
    hedged: list[Target] | None = None  # targets a hedge tried (the walk does not again)
