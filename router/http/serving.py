"""The uvicorn settings the router serves with, in one place.

`llm-switchyard serve` and the test server both take them from here, so that tests run the
same event loop (uvloop), HTTP parser (httptools) and server options as production.
"""

from __future__ import annotations

from typing import Any

from router.http.edge import EdgeProtocol


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config`, other than the app, host,
    port and worker count."""
    return {
        "loop": "uvloop",
        "http": EdgeProtocol,  # httptools, behind the limits on headers and connections
        "ws": "none",  # no websocket endpoint: not importing `websockets` saves 1.6 MB
        "access_log": False,  # the router writes its own access log line
        "proxy_headers": False,  # a sidecar's clients are local; X-Forwarded-* is not ours
        "server_header": False,  # no `server: uvicorn` on every answer: it tells clients nothing
        "log_level": "warning",
        "lifespan": "on",
        "timeout_graceful_shutdown": 2,  # after our own drain (router.http.drain) has run
    }
