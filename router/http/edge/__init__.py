"""The HTTP edge: what a client must keep to before its request reaches the app.

uvicorn's httptools protocol waits without limit for a request's headers, accepts headers of
any number and size, and any number of connections. `EdgeProtocol` is the protocol uvicorn
serves with (`http=`, see `router.http.serving`): it wraps uvicorn's own protocol, follows the
same bytes with an httptools parser of its own to know where each request begins and where
its headers end, and forwards every byte unchanged, unless a client

- takes longer than `header_timeout_seconds` to send its headers (from the opening of the
  connection, or from the first byte of a later request on it): 408;
- sends a header block (request line and headers) over `max_header_bytes`, or more than
  `max_headers` headers: 431, before uvicorn has parsed any of that request;
- opens a connection while `max_connections` are open in this process: 503, at once.

Each answer is the OpenAI error envelope with `connection: close`. The connection is then
half-closed, and what the client still sends is read and discarded for up to `LINGER`
seconds, so that the client reads the answer instead of a reset. Each drop is counted and
logged by `router.http.dropped`. Limits on a request's body are the app's (`router.http.body`).

    limits.py    the limits, set in each worker process by the app factory (`configure`)
    headers.py   how large a header block is, measured on the raw bytes
    protocol.py  the protocol itself
"""

from router.http.edge.limits import EdgeLimits, configure
from router.http.edge.protocol import LINGER, EdgeProtocol

__all__ = ["LINGER", "EdgeLimits", "EdgeProtocol", "configure"]
