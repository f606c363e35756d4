"""The running router: the active graph, the upstream transports, and readiness.

Transports belong to provider definitions, not to a graph: a reloaded graph whose provider
is unchanged keeps that provider's connection pool.
"""

from __future__ import annotations

from collections.abc import Callable

from router.http.body import BodyClock
from router.limits.admission import Limiter
from router.observability import logs, metrics
from router.observability.loop_lag import LagWatch
from router.routing.breaker import breaker_states
from router.spend.ledger import open_ledger
from router.types import RoutingGraph
from router.upstream.transport import HttpTransport, Transport


class RouterState:
    def __init__(self, graph: RoutingGraph) -> None:
        self.graph = graph
        self.ready = False
        self.limiter = Limiter(graph.config.server.rate_limit_backend)
        self.ledger = open_ledger(graph.config.spend)  # None unless `spend.ledger` is set
        self._transports: dict[str, Transport] = {}  # provider definition digest -> transport
        self._unobserve: Callable[[], None] = lambda: None
        logs.register_secrets(list(graph.secrets))
        self.body_clock = BodyClock()  # the time limits on request bodies
        self._lag = LagWatch()  # `llm_router_event_loop_lag_seconds`
        # Called as hook(old, new) just before a reloaded graph goes live, on the event loop:
        # where state keyed by policy (rate-limit counters) moves to the new graph.
        self.reload_hooks: list[Callable[[RoutingGraph, RoutingGraph], None]] = []

    def redact(self, body: bytes) -> bytes:
        """Remove configured secrets, their digests and fragments from an error body (some
        upstreams echo keys back); see `router.observability.redaction`."""
        return self.graph.redactor.body(body)

    def attach(self, graph: RoutingGraph) -> None:
        """Give each provider of `graph` its transport, reusing the pool of an unchanged
        definition. A reload calls it before touching the active graph: a plugin's transport
        that raises then leaves that graph as it was."""
        for runtime in graph.providers.values():
            transport = self._transports.get(runtime.definition)
            if transport is None:
                transport = runtime.provider.local_transport() or HttpTransport(
                    runtime.name, runtime.max_connections, runtime.max_answer_bytes
                )
                self._transports[runtime.definition] = transport
            runtime.transport = transport

    def swap(self, graph: RoutingGraph) -> None:
        """Make a compiled graph the active one; requests already running keep the old one.
        If it fails (a reload hook raising), the old one stays active, and its secrets
        the masked ones."""
        logs.register_secrets(list(graph.secrets))
        try:
            self.attach(graph)
            for hook in self.reload_hooks:
                hook(self.graph, graph)
        except BaseException:
            logs.register_secrets(list(self.graph.secrets))
            raise
        self.graph = graph

    def retire_transports(self) -> list[object]:
        """Forget the transports no provider of the active graph uses; the caller closes them."""
        live = {runtime.definition for runtime in self.graph.providers.values()}
        return [self._transports.pop(d) for d in list(self._transports) if d not in live]

    async def start(self) -> None:
        self._lag.start()
        await self.limiter.start()
        self.attach(self.graph)
        self._unobserve = metrics.observe_breakers(lambda: breaker_states(self.graph))
        if self.ledger is not None:
            await self.ledger.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        self._lag.stop()
        self._unobserve()
        await self.limiter.aclose()
        for transport in self._transports.values():
            await transport.aclose()  # type: ignore[attr-defined]
        self._transports.clear()
        if self.ledger is not None:  # last: requests have ended, their rows are queued
            await self.ledger.stop()
