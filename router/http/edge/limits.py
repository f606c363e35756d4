"""The edge's limits: the served config's `server:` keys, read once per worker process.

uvicorn builds the protocol of each connection itself (`http=` takes a class), in each worker
process (`--workers N` starts them with `spawn`: nothing set in the parent survives). What
every worker does before it accepts a connection is to call the app factory, which loads
the config: the factory calls `configure`, and the protocols read `current()`.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from router.config.models import ServerConfig
from router.observability import logs

log = logs.get_logger("router.http.edge")


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    header_timeout: float = 10.0  # seconds
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_connections: int = 4096
    send_timeout: float = 60.0  # seconds a client may take none of its answer

    @classmethod
    def of(cls, server: ServerConfig) -> EdgeLimits:
        return cls(
            server.header_timeout_seconds,
            server.max_header_bytes,
            server.max_headers,
            server.max_connections,
            server.send_timeout_seconds,
        )


_limits = EdgeLimits()


def current() -> EdgeLimits:
    return _limits


def configure(limits: EdgeLimits) -> None:
    """The limits of the connections this process accepts from now on, and enough open
    files for them: each client connection is a file, and so is its upstream connection."""
    global _limits
    _limits = limits
    _allow_open_files(2 * limits.max_connections + 256)


def _allow_open_files(wanted: int) -> None:
    """Raise the soft limit on open files towards `wanted` (as far as the hard limit allows):
    without a file for a connection, the kernel's accept fails and the client is reset
    instead of answered. Many systems start processes with a soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    allowed = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if allowed > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (allowed, hard))
    if allowed < wanted:
        log.warning(
            "open_files_limit_low",
            open_files=allowed,
            wanted=wanted,
            hint="lower server.max_connections or raise the open-files limit (ulimit -n)",
        )
