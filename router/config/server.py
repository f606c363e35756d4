"""`server:`: how the router listens, who may call it, and the limits of its edge."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr

from router.config.policies import (
    RateLimitBackendConfig,
)
from router.config.strict import Strict


class ServerConfig(Strict):
    """How the router listens and who may call it."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(4000, ge=1, le=65535, description="Port to listen on.")
    auth: Literal["keys", "none"] = Field(
        "keys",
        description="`keys`: every request needs a configured client key. `none`: no "
        "authentication at all; only for trusted networks.",
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted; larger gets 413 and the connection is closed.",
    )
    max_json_depth: int = Field(
        64,
        ge=1,
        le=200,
        description="Deepest nesting of arrays and objects accepted in a request body; deeper "
        "gets 400.",
    )
    body_idle_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Longest pause while a request body arrives; longer gets 408 and the "
        "connection is closed.",
    )
    body_timeout_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Time for a whole request body to arrive, from the end of its headers; "
        "longer gets 408 and the connection is closed.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Time for a request's headers to arrive, from the opening of the "
        "connection (on a kept-alive connection: from the request's first byte); longer gets "
        "408 and the connection is closed. Read at start-up only.",
    )
    send_timeout_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Longest a client may take none of its answer while the router has more "
        "to send it (the connection's buffers full); longer and the connection is closed, "
        "the request ending as one whose client left (`client_gone`), so that a client that "
        "stops reading cannot hold a stream, and its upstream connection, open. Read at "
        "start-up only.",
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest request line and headers together; larger gets 431 and the "
        "connection is closed. Read at start-up only.",
    )
    max_headers: int = Field(
        100,
        ge=8,
        description="Most header lines in a request; more gets 431 and the connection is "
        "closed. Read at start-up only.",
    )
    max_connections: int = Field(
        4096,
        ge=1,
        description="Open client connections per worker process; a connection beyond it is "
        "answered 503 and closed. Read at start-up only.",
    )
    max_body_bytes_by_operation: dict[str, Annotated[int, Field(ge=1024)]] = Field(
        default_factory=dict,
        description="Largest request body per operation, by name (e.g. `transcriptions: "
        "104857600`), where it differs from `max_body_bytes`. `transcriptions` (an audio "
        "upload) defaults to 26214400 (25 MiB, OpenAI's own limit).",
    )
    admin_key: SecretStr | None = Field(
        None,
        description="Key for the `/admin/` endpoints, usually `${ENV_VAR}`; without it they "
        "are off.",
    )
    rate_limits: list[str] = Field(
        default_factory=list,
        description="Names of `rate_limits` policies applied to every request (one budget).",
    )
    budgets: list[str] = Field(
        default_factory=list,
        description="Names of `budgets` for every request (one shared budget).",
    )
    rate_limit_backend: RateLimitBackendConfig = Field(
        default_factory=RateLimitBackendConfig,  # type: ignore[arg-type]
        description="Where rate-limit counters live (memory or Redis).",
    )
    forward_client_headers: list[str] = Field(
        default_factory=list,
        description="Allow-list of client request headers passed on to upstreams; no other "
        "client header reaches an upstream.",
    )
    watch_config: bool = Field(
        True,
        description="Reload when the config file changes (also on SIGHUP and "
        "`POST /admin/reload`); Kubernetes ConfigMap updates are seen too.",
    )
    drain_seconds: float = Field(
        20.0,
        ge=0,
        le=3600,
        description="On SIGTERM: seconds that requests and streams in flight get to finish "
        "while readiness reports 503 and new requests are refused with 503.",
    )
    strict_config: bool = Field(
        False,
        description="Treat config warnings (a secret written inline, a key that matches no "
        "model, a policy attached to nothing, a short admin key) as errors: `serve` refuses "
        "to start, a reload is rejected, and `check` fails.",
    )
