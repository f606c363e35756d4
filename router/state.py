"""The running router: the active graph, the upstream transports, and readiness.

Transports belong to provider definitions, not to a graph: a reloaded graph whose provider
is unchanged keeps that provider's connection pool.
"""

from __future__ import annotations

from collections.abc import Callable

from router import logs, metrics
from router.body import BodyClock
from router.breaker import breaker_states
from router.config.secrets import config_secrets
from router.graph import RoutingGraph
from router.limiter import Limiter
from router.transport import AiohttpTransport


class RouterState:
    def __init__(self, graph: RoutingGraph) -> None:
        self.graph = graph
        self.ready = False
        self.limiter = Limiter(graph.config.server.rate_limit_backend)
        self._transports: dict[str, object] = {}  # provider definition digest -> transport
        self._secrets: list[bytes] = []
        self._unobserve: Callable[[], None] = lambda: None
        self._remember_secrets(graph)
        self.body_clock = BodyClock()  # the time limits on request bodies
        # Called as hook(old, new) just before a reloaded graph goes live, on the event loop:
        # where state keyed by policy (rate-limit counters) moves to the new graph.
        self.reload_hooks: list[Callable[[RoutingGraph, RoutingGraph], None]] = []

    def _remember_secrets(self, graph: RoutingGraph) -> None:
        secrets = config_secrets(graph.config)
        logs.register_secrets(secrets)
        self._secrets = [s.encode() for s in secrets if s and len(s) >= 4]

    def redact(self, body: bytes) -> bytes:
        """Remove configured secrets from text an upstream wrote (some echo keys back)."""
        for secret in self._secrets:
            if body.find(secret) != -1:  # (`in` on bytes first tries the needle as an int)
                body = body.replace(secret, logs.MASK.encode())
        return body

    def _attach(self, graph: RoutingGraph) -> None:
        for runtime in graph.providers.values():
            transport = self._transports.get(runtime.definition)
            if transport is None:
                transport = runtime.provider.local_transport() or AiohttpTransport(
                    runtime.name, runtime.max_connections
                )
                self._transports[runtime.definition] = transport
            runtime.transport = transport

    def swap(self, graph: RoutingGraph) -> None:
        """Make a compiled graph the active one; requests already running keep the old one."""
        self._remember_secrets(graph)
        self._attach(graph)
        for hook in self.reload_hooks:
            hook(self.graph, graph)
        self.graph = graph

    def retire_transports(self) -> list[object]:
        """Forget the transports no provider of the active graph uses; the caller closes them."""
        live = {runtime.definition for runtime in self.graph.providers.values()}
        return [self._transports.pop(d) for d in list(self._transports) if d not in live]

    async def start(self) -> None:
        self._attach(self.graph)
        self._unobserve = metrics.observe_breakers(lambda: breaker_states(self.graph))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        self._unobserve()
        await self.limiter.aclose()
        for transport in self._transports.values():
            await transport.aclose()  # type: ignore[attr-defined]
        self._transports.clear()
