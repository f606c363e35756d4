"""Hot reload: a new config is parsed and compiled off the request path, then swapped in.

Triggers: a change to the config file (polled: the resolved real path, inode, mtime and size,
so a Kubernetes ConfigMap update, which swaps a `..data` symlink and writes no file, is seen
too; the path is kept as given and its links followed at every check, since kubelet deletes
the directory they pointed to), SIGHUP, and `POST /admin/reload`. A reload reads the file's
bytes once, hashes them, and parses and compiles them in a worker thread; the swap itself
happens on the event loop, so a request sees either the old graph or the new one, and keeps
the one it started with.

A reload that fails, for any reason and however triggered (an invalid file, a plugin that
raises while the new graph is built), is rejected: the old graph keeps serving, the error
(file:line:key, or the exception) is logged, counted
(`llm_router.config.reloads{result="failed"}`) and shown by `GET /admin/config`.

Settings read only at start-up (`RESTART_ONLY`) cannot change in a running process: a reload
that changes one logs `config_restart_needed`, and `GET /admin/config` lists it until a
restart. `server.watch_config` is applied: the watcher starts or stops.

Runtime state survives for targets whose provider definition and upstream model did not
change: the new graph reuses the old `Target` object (updating its weight, label and
provider runtime), so every field on it, `in_flight`, `latency`, `cool_until` and whatever
else is added there, carries over, and requests still in flight update the same object.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.config.loader import ConfigError, ConfigIssue, load_config_text
from router.config.models import RouterConfig
from router.config.secrets import (
    config_secrets,
)
from router.config.settings import Settings
from router.graph.links import relink, serving_of
from router.graph.load import file_hash, graph_from_bytes
from router.graph.pacing import Paced, loop_first
from router.graph.retire import Retiring
from router.http.state import RouterState
from router.limits.policies import unshared_limits
from router.observability import logs, metrics
from router.types import RoutingGraph, Target

log = logs.get_logger("router.graph.reload")
POLL_SECONDS = 0.2

# Settings only read when the process starts, as dotted paths into the config: a reload that
# changes one cannot apply it. The one list of them: a new start-up-only setting goes here.
RESTART_ONLY: tuple[str, ...] = (
    "server.host",
    "server.port",
    "server.rate_limit_backend.url",  # the limiter's backend is built once, at start-up
    "server.rate_limit_backend.key_prefix",
    "server.rate_limit_backend.timeout",
    "server.rate_limit_backend.lease_seconds",
    "server.header_timeout_seconds",  # the HTTP edge's limits are the server's, set at start
    "server.max_header_bytes",
    "server.max_headers",
    "server.max_connections",
    "server.send_timeout_seconds",
    "spend.currency",  # the ledger labels its rows with the start-up currency
    "spend.ledger",  # its writer and database are opened once, at start-up
)


@dataclass
class ConfigStatus:
    """What `GET /admin/config` reports about the active config and the last failure."""

    path: str
    file_hash: str | None = None
    loaded_at: float = field(default_factory=time.time)
    reloads_ok: int = 0
    reloads_failed: int = 0
    last_error: dict[str, Any] | None = None
    restart_needed: list[str] = field(default_factory=list)


def setting(config: RouterConfig, dotted: str) -> Any:
    """The value of a setting named by its dotted path, e.g. `server.port`."""
    value: Any = config
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def restart_needed(running: RouterConfig, loaded: RouterConfig) -> list[str]:
    """The `RESTART_ONLY` settings whose value in `loaded` differs from the running one's."""
    return [key for key in RESTART_ONLY if setting(running, key) != setting(loaded, key)]


def _candidate_secrets(data: bytes, path: str) -> list[str]:
    """The secrets of a config that failed to load, if it parses: an error may quote one (a
    plugin's message naming the key it was given), and the logs mask only the active
    config's."""
    try:
        config, source = load_config_text(data.decode("utf-8", "replace"), path)
    except Exception:
        return []
    return config_secrets(config, source)


def _mask(text: str, secrets: list[str]) -> str:
    """`logs.mask` (the active config's secrets), then a rejected config's own."""
    text = logs.mask(text)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:  # as `logs.register_secrets`: shorter would mask ordinary text
            text = text.replace(secret, logs.MASK)
    return text


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


@dataclass(frozen=True, slots=True)
class Carried:
    """A new graph with the old `Target` objects it keeps already in its routes, chains and
    reach (`plan_carry_over`), and the settings each kept one is to take (`apply`)."""

    graph: RoutingGraph
    new: RoutingGraph  # the graph as compiled, before any target was kept
    old: RoutingGraph  # the graph it was planned against
    kept: tuple[tuple[Target, Target], ...]  # (old target kept, the fresh one it replaces)

    def apply(self) -> RoutingGraph:
        """Give each kept target its new settings; on the event loop, at the swap, after
        `attach` gave the new runtimes their transports (requests on the old graph keep
        using these targets until then)."""
        for kept, fresh in self.kept:
            kept.runtime = fresh.runtime  # equal definition: same transport once attached
            kept.weight = fresh.weight
            kept.label = fresh.label
            kept.timeouts = fresh.timeouts  # a model's or target's own may have changed
            kept.price = fresh.price
            kept.continues = fresh.continues
            if (kept.ttfts is None) != (fresh.ttfts is None):
                kept.ttfts = fresh.ttfts  # hedging by percentile turned on or off
            if (
                kept.breaker is None
                or fresh.breaker is None
                or kept.breaker.policy != fresh.breaker.policy
            ):
                kept.breaker = fresh.breaker  # breaker settings changed: start from the new ones
        return self.graph


def plan_carry_over(old: RoutingGraph, new: RoutingGraph) -> Carried:
    """Which targets of `new` are old `Target` objects kept, so that their runtime state
    survives: those whose (provider definition, model) existed in `old`, the same route name
    matched first. Builds the routes, chains and reach around them without changing either
    graph, so that a reload does it in its worker thread: on the event loop it held requests
    up for 34 ms at a time with 10,000 keys and 1,000 models."""
    pool: dict[tuple[str, str], list[tuple[str, Target]]] = defaultdict(list)
    for route in old.routes.values():
        for target in route.targets:
            pool[(target.runtime.definition, target.model)].append((route.name, target))
    kept: list[tuple[Target, Target]] = []

    def take(route_name: str, fresh: Target) -> Target:
        candidates = pool.get((fresh.runtime.definition, fresh.model))
        if not candidates:
            return fresh
        index = next((i for i, (r, _) in enumerate(candidates) if r == route_name), 0)
        _, found = candidates.pop(index)
        kept.append((found, fresh))
        return found

    routes = {}
    for name, route in new.routes.items():
        targets = tuple(take(name, t) for t in route.targets)
        routes[name] = dataclasses.replace(route, targets=targets, serving=serving_of(targets))
    return Carried(relink(new, routes), new, old, tuple(kept))


def carry_over(old: RoutingGraph, new: RoutingGraph) -> RoutingGraph:
    """`new`, with each target whose (provider definition, model) existed in `old` replaced by
    the old `Target` object, so its runtime state survives, and its settings (weight, label,
    effective timeouts, breaker policy) are the new ones. Same route name is matched first."""
    return plan_carry_over(old, new).apply()


def _compiled(data: bytes, path: str, old: RoutingGraph) -> Carried:
    """The graph, planned against `old` (`plan_carry_over`), checked against the workers'
    limits, and its secrets' masks made ready for the swap (`logs.prepare_secrets`): in the
    reload's worker thread, not on the event loop."""
    graph = graph_from_bytes(data, path)
    _check_workers(graph, path)
    logs.prepare_secrets(graph.secrets)
    return plan_carry_over(old, graph)


def _check_workers(graph: RoutingGraph, path: str) -> None:
    """A reload cannot bring in limits that this process's sibling workers would not share."""
    problem = unshared_limits(
        graph.config, graph.limits, Settings().workers, graph.budgets.attached
    )
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
        self._retiring = Retiring()  # replaced graphs, freed a batch at a time once unused
        self._timers: list[asyncio.TimerHandle] = []
        self._signalled: set[asyncio.Task[Any]] = set()  # SIGHUP reloads, held until done
        self._started_with = state.graph.config  # what the RESTART_ONLY settings really are
        # The hash of the bytes the active graph was compiled from, not a second read of the
        # file: what `/health` reports, and what a reload compares with.
        self.status.file_hash = self._seen_hash = state.graph.config_hash or None
        if self.path.is_file():
            self._signature = _signature(self._paths())
        self.status.loaded_at = state.graph.loaded_at

    def _paths(self) -> list[Path]:
        return [self.path, *referenced_files(self.state.graph)]

    async def start(self) -> None:
        self._set_watching(self.state.graph.config.server.watch_config)
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
        await self._retiring.stop()
        await self._close(list(self._retired))

    async def _close(self, transports: list[Any]) -> None:
        """Close retired transports not closed yet."""
        for transport in transports:
            if transport in self._retired:
                self._retired.remove(transport)
                await transport.aclose()

    def _set_watching(self, on: bool) -> None:
        """Start or stop the file watcher, as `server.watch_config` says."""
        running = self._task is not None and not self._task.done()
        if on and not running and self.path.is_file():
            self._task = asyncio.create_task(self._watch(), name="config-watch")
        elif not on and self._task is not None:
            self._task.cancel()  # not awaited: this may run inside the watcher's own reload
            self._task = None

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload("sighup", force=True))
        self._signalled.add(task)
        task.add_done_callback(self._sighup_done)

    def _sighup_done(self, task: asyncio.Task[Any]) -> None:
        self._signalled.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("config_reload_crashed", trigger="sighup", error=repr(task.exception()))

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
        """Load the file and swap it in if it is new and valid; reports what happened. Any
        failure (an invalid file, a plugin raising) leaves the active graph serving."""
        async with self._lock:
            data: bytes | None = None
            digest: str | None = None
            try:
                raw, digest = await asyncio.to_thread(self._read)
                data = raw  # (for `_failed`)
                if not force and digest == self._seen_hash:
                    return {"result": "unchanged", "hash": self.status.file_hash}
                self._seen_hash = digest
                with loop_first():
                    compiled = functools.partial(_compiled, old=self.state.graph)
                    carried = await asyncio.to_thread(Paced(compiled).compile, raw, str(self.path))
                old, graph = self.state.graph, carried.graph
                if carried.old is not old:  # swapped meanwhile (not by a reload): plan again
                    carried = plan_carry_over(old, carried.new)
                    graph = carried.graph
                self.state.attach(graph)  # before the kept targets take the new runtimes
                self.state.swap(carried.apply())
            except Exception as exc:
                return await self._failed(reason, exc, data, digest)
            for warning in graph.warnings:
                log.warning("config_warning", trigger=reason, issue=str(warning))
            return self._after_swap(old, graph, digest, reason)

    def _read(self) -> tuple[bytes, str]:
        """The file's bytes and their hash (in a worker thread: 3 ms for a 1.4 MB config)."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            issue = ConfigIssue(str(self.path), None, "", f"cannot read: {exc.strerror}")
            raise ConfigError([issue]) from None
        return data, file_hash(data)

    async def _failed(
        self, reason: str, exc: Exception, data: bytes | None, digest: str | None
    ) -> dict[str, Any]:
        """Log, count and record a failed reload: `invalid_config` for a config error
        (file:line: key), `reload_error` for anything else (the exception, traceback logged)."""
        trace: str | None = None
        if isinstance(exc, ConfigError):
            code, texts = "invalid_config", [str(issue) for issue in exc.issues]
        else:
            code, texts = "reload_error", [f"{self.path}: {type(exc).__name__}: {exc}"]
            trace = "".join(traceback.format_exception(exc))
        secrets = await asyncio.to_thread(_candidate_secrets, data, str(self.path)) if data else []
        issues = [_mask(text, secrets) for text in texts]
        self.status.reloads_failed += 1
        self.status.last_error = {
            "at": time.time(),
            "trigger": reason,
            "code": code,
            "hash": digest,
            "issues": issues,
        }
        metrics.reloads.add(1, "failed")
        extra = {"traceback": _mask(trace, secrets)} if trace else {}
        log.error(
            "config_reload_failed",
            trigger=reason,
            code=code,
            issues=issues,
            kept=self.status.file_hash,
            **extra,
        )
        return {"result": "failed", "code": code, "issues": issues, "hash": self.status.file_hash}

    def _after_swap(
        self, old: RoutingGraph, new: RoutingGraph, digest: str | None, reason: str
    ) -> dict[str, Any]:
        self.status.file_hash = digest
        self.status.loaded_at = new.loaded_at
        self.status.reloads_ok += 1
        self.status.last_error = None
        metrics.reloads.add(1, "ok")
        self._set_watching(new.config.server.watch_config)
        pending = restart_needed(self._started_with, new.config)
        self.status.restart_needed = pending
        if pending:
            log.warning(
                "config_restart_needed",
                keys=pending,
                detail="these settings keep their start-up values until the router restarts",
            )
        # Requests still on the old graph may use it and its transports: close these after
        # their longest budget, or when the router stops, whichever comes first.
        grace = max(r.timeouts.total for r in old.providers.values()) + 1
        self._retiring.add(old, grace)
        retired = self.state.retire_transports()
        if retired:
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
        return {"result": "reloaded", "hash": digest, "restart_needed": pending}
