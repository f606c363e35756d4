"""Hot reload: a new config is parsed and compiled off the request path, then swapped in.

Triggers: a change to the config file (polled: the resolved real path, inode, mtime and size,
so a Kubernetes ConfigMap update, which swaps a `..data` symlink and writes no file, is seen
too), SIGHUP, and `POST /admin/reload`. A reload reads the file's bytes once, hashes them,
and parses and compiles them in a worker thread; the swap itself happens on the event loop,
so a request sees either the old graph or the new one, and keeps the one it started with.

An invalid file is rejected: the old graph keeps serving, the error (file:line:key) is
logged, counted (`llm_router.config.reloads{result="failed"}`) and shown by
`GET /admin/config`.

Runtime state survives for targets whose provider definition and upstream model did not
change: the new graph reuses the old `Target` object (updating its weight, label and
provider runtime), so every field on it, `in_flight`, `latency`, `cool_until` and whatever
else is added there, carries over, and requests still in flight update the same object.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router import errors, logs, metrics
from router.config.loader import ConfigError, ConfigIssue
from router.config.secrets import is_sensitive_header
from router.graph import RoutingGraph, Target, file_hash, graph_from_bytes
from router.limits import unshared_limits
from router.settings import Settings
from router.state import RouterState

log = logs.get_logger("router.reload")
POLL_SECONDS = 0.2


@dataclass
class ConfigStatus:
    """What `GET /admin/config` reports about the active config and the last failure."""

    path: str
    file_hash: str | None = None
    loaded_at: float = field(default_factory=time.time)
    reloads_ok: int = 0
    reloads_failed: int = 0
    last_error: dict[str, Any] | None = None


def _signature(paths: list[Path]) -> tuple[Any, ...]:
    """Changes when a watched file changes, including by a symlink swap; cheap to compute."""
    out: list[Any] = []
    for path in paths:
        try:
            real = os.path.realpath(path)
            st = os.stat(real)
        except OSError:
            out.append(None)
            continue
        out.append((real, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


def referenced_files(graph: RoutingGraph) -> list[Path]:
    """Files the config points at, watched with it. The config has none today; a key that
    names a file (a CA bundle, a prompt template) adds its path here."""
    return []


def carry_over(old: RoutingGraph, new: RoutingGraph) -> RoutingGraph:
    """`new`, with each target whose (provider definition, model) existed in `old` replaced by
    the old `Target` object, so its runtime state survives. Same route name is matched first."""
    pool: dict[tuple[str, str], list[tuple[str, Target]]] = defaultdict(list)
    for route in old.routes.values():
        for target in route.targets:
            pool[(target.runtime.definition, target.model)].append((route.name, target))

    def take(route_name: str, fresh: Target) -> Target:
        candidates = pool.get((fresh.runtime.definition, fresh.model))
        if not candidates:
            return fresh
        index = next((i for i, (r, _) in enumerate(candidates) if r == route_name), 0)
        _, kept = candidates.pop(index)
        kept.runtime = fresh.runtime  # equal definition: same transport once attached
        kept.weight = fresh.weight
        kept.label = fresh.label
        if (
            kept.breaker is None
            or fresh.breaker is None
            or kept.breaker.policy != fresh.breaker.policy
        ):
            kept.breaker = fresh.breaker  # breaker settings changed: start from the new ones
        return kept

    routes = {}
    for name, route in new.routes.items():
        targets = tuple(take(name, t) for t in route.targets)
        routes[name] = dataclasses.replace(route, targets=targets)
    return dataclasses.replace(new, routes=routes)


def _check_workers(graph: RoutingGraph, path: str) -> None:
    """A reload cannot bring in limits that this process's sibling workers would not share."""
    problem = unshared_limits(graph.config, graph.limits, Settings().workers)
    if problem:
        url = "server.rate_limit_backend.url"
        raise ConfigError([ConfigIssue(path, None, url, problem)])


class Reloader:
    """Owns reloading for one running router: watching, signals, and the admin endpoints."""

    def __init__(self, state: RouterState) -> None:
        self.state = state
        self.path = Path(state.graph.source_file).absolute()
        self.status = ConfigStatus(str(self.path))
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._signature: tuple[Any, ...] = ()
        self._seen_hash: str | None = None  # last hash tried, valid or not
        self._retired: list[Any] = []  # transports of replaced providers, not closed yet
        self._timers: list[asyncio.TimerHandle] = []
        # The hash of the bytes the active graph was compiled from, not a second read of the
        # file: what `/health` reports, and what a reload compares with.
        self.status.file_hash = self._seen_hash = state.graph.config_hash or None
        if self.path.is_file():
            self._signature = _signature(self._paths())
        self.status.loaded_at = state.graph.loaded_at

    def _paths(self) -> list[Path]:
        return [self.path, *referenced_files(self.state.graph)]

    async def start(self) -> None:
        if self.state.graph.config.server.watch_config and self.path.is_file():
            self._task = asyncio.create_task(self._watch(), name="config-watch")
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for timer in self._timers:
            timer.cancel()
        await self._close(list(self._retired))

    async def _close(self, transports: list[Any]) -> None:
        """Close retired transports not closed yet."""
        for transport in transports:
            if transport in self._retired:
                self._retired.remove(transport)
                await transport.aclose()

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload("sighup", force=True))
        task.add_done_callback(lambda t: t.exception())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            signature = _signature(self._paths())
            if signature == self._signature or None in signature:
                continue  # unchanged, or mid-swap: look again next tick
            self._signature = signature
            try:
                await self.reload("watch")
            except Exception as exc:  # never let the watcher die
                log.error("config_reload_crashed", error=repr(exc))

    async def reload(self, reason: str, force: bool = False) -> dict[str, Any]:
        """Load the file and swap it in if it is new and valid; reports what happened."""
        async with self._lock:
            try:
                data = await asyncio.to_thread(self._read)
            except ConfigError as exc:
                return self._failed(reason, exc, None)
            digest = file_hash(data)
            if not force and digest == self._seen_hash:
                return {"result": "unchanged", "hash": self.status.file_hash}
            self._seen_hash = digest
            try:
                graph = await asyncio.to_thread(graph_from_bytes, data, str(self.path))
                _check_workers(graph, str(self.path))
            except ConfigError as exc:
                return self._failed(reason, exc, digest)
            for warning in graph.warnings:
                log.warning("config_warning", trigger=reason, issue=str(warning))
            old = self.state.graph
            self.state.swap(carry_over(old, graph))
            self._after_swap(old, graph, digest, reason)
            return {"result": "reloaded", "hash": digest}

    def _read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            issue = ConfigIssue(str(self.path), None, "", f"cannot read: {exc.strerror}")
            raise ConfigError([issue]) from None

    def _failed(self, reason: str, exc: ConfigError, digest: str | None) -> dict[str, Any]:
        issues = [logs.mask(str(issue)) for issue in exc.issues]
        self.status.reloads_failed += 1
        self.status.last_error = {"at": time.time(), "hash": digest, "issues": issues}
        metrics.reloads.add(1, "failed")
        log.error("config_reload_failed", trigger=reason, issues=issues, kept=self.status.file_hash)
        return {"result": "failed", "issues": issues, "hash": self.status.file_hash}

    def _after_swap(
        self, old: RoutingGraph, new: RoutingGraph, digest: str | None, reason: str
    ) -> None:
        self.status.file_hash = digest
        self.status.loaded_at = new.loaded_at
        self.status.reloads_ok += 1
        self.status.last_error = None
        metrics.reloads.add(1, "ok")
        before, after = old.config.server, new.config.server
        if (before.host, before.port) != (after.host, after.port):
            log.warning("config_restart_needed", keys=["server.host", "server.port"])
        retired = self.state.retire_transports()
        if retired:
            # Requests still on the old graph may use them: close after their longest budget,
            # or when the router stops, whichever comes first.
            grace = max(r.timeouts.total for r in old.providers.values()) + 1
            loop = asyncio.get_running_loop()
            self._retired += retired
            self._timers.append(
                loop.call_later(grace, lambda: [loop.create_task(self._close(retired))])
            )
        log.info(
            "config_reloaded",
            trigger=reason,
            hash=digest,
            models=len(new.routes),
            providers=len(new.providers),
        )


# -- admin endpoints ---------------------------------------------------------------------------


def masked_config(graph: RoutingGraph) -> dict[str, Any]:
    """The active config as JSON, secrets as `***` (SecretStr fields and credential headers)."""
    dump = graph.config.model_dump(mode="json")
    for provider in dump.get("providers", {}).values():
        if provider.get("api_key") is not None:
            provider["api_key"] = logs.MASK
        headers = provider.get("headers") or {}
        for name in headers:
            if is_sensitive_header(name):
                headers[name] = logs.MASK
    for key in dump.get("keys", {}).values():
        if key.get("key") is not None:
            key["key"] = logs.MASK
    if dump.get("server", {}).get("admin_key") is not None:
        dump["server"]["admin_key"] = logs.MASK
    return dump


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


async def admin_config(request: Request) -> Response:
    from router.admin import require_admin

    try:
        state = require_admin(request)
    except errors.RouterError as exc:
        return Response(exc.to_json(), status_code=exc.status, media_type="application/json")
    reloader: Reloader = request.app.state.reloader
    status = reloader.status
    body = {
        "path": status.path,
        "hash": status.file_hash,
        "loaded_at": _iso(status.loaded_at),
        "reloads": {"ok": status.reloads_ok, "failed": status.reloads_failed},
        "last_error": status.last_error
        and {**status.last_error, "at": _iso(status.last_error["at"])},
        "config": masked_config(state.graph),
    }
    text = logs.mask(orjson.dumps(body).decode())
    return Response(text, media_type="application/json")


async def admin_reload(request: Request) -> Response:
    from router.admin import require_admin

    try:
        require_admin(request)
    except errors.RouterError as exc:
        return Response(exc.to_json(), status_code=exc.status, media_type="application/json")
    reloader: Reloader = request.app.state.reloader
    outcome = await reloader.reload("admin", force=True)
    if outcome["result"] == "failed":
        error = errors.InvalidRequest(
            "the config is invalid; the active one keeps serving:\n" + "\n".join(outcome["issues"]),
            code="invalid_config",
        )
        return Response(error.to_json(), status_code=400, media_type="application/json")
    return Response(orjson.dumps(outcome), media_type="application/json")


def reload_routes() -> list[Route]:
    return [
        Route("/admin/config", admin_config, methods=["GET"]),
        Route("/admin/reload", admin_reload, methods=["POST"]),
    ]
