"""Clients dropped at a limit of the HTTP edge: counted always, logged at most every few seconds.

A thousand slow clients are a thousand drops: each one is counted in
`llm_router_connections_dropped_total{reason}`. A client dropped before its request reached
the app (no access-log line) is also logged, as the warning `connection_dropped`, at most
once every `LOG_EVERY` seconds per reason, with how many drops went unlogged since the
previous line, so that a flood of bad clients cannot flood the log.
The line names the reason, the limit and the client's address; never a header or a body.
"""

from __future__ import annotations

import time
from typing import Any

from router.observability import logs, metrics

LOG_EVERY = 10.0  # seconds
log = logs.get_logger("router.http.edge")
_last: dict[str, tuple[float, int]] = {}  # reason -> (when last logged, drops not logged since)


def client_address(transport: Any) -> str | None:
    """The client's IP address (no port), if the transport knows it."""
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def count(reason: str) -> None:
    """Count one dropped client whose request has its own line in the access log."""
    metrics.connections_dropped.add(1, reason)


def report(reason: str, limit: float, client: str | None) -> None:
    """Count one dropped client; log it unless this reason was logged in the last seconds."""
    metrics.connections_dropped.add(1, reason)
    now = time.monotonic()
    logged_at, unlogged = _last.get(reason, (-LOG_EVERY, 0))
    if now - logged_at < LOG_EVERY:
        _last[reason] = (logged_at, unlogged + 1)
        return
    _last[reason] = (now, 0)
    log.warning("connection_dropped", reason=reason, limit=limit, client=client, unlogged=unlogged)
